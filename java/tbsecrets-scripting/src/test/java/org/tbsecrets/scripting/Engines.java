package org.tbsecrets.scripting;

import java.io.ByteArrayOutputStream;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;

/** The three engines behind one interface, each with its script output captured. */
abstract class Engines implements AutoCloseable {
    final ByteArrayOutputStream output = new ByteArrayOutputStream();

    abstract String name();

    abstract String run(ScriptInvocation inv, String script, String msgJson, Duration timeout);

    abstract int activeRuns();

    /** The script output (console.log, print) so far. */
    synchronized String output() {
        return output.toString(StandardCharsets.UTF_8);
    }

    String run(ScriptInvocation inv, String script) {
        return run(inv, script, "{}", Duration.ofMinutes(1));
    }

    @Override
    public void close() {}

    @Override
    public String toString() {
        return name();
    }

    static List<String> names() {
        return List.of("graaljs", "nashorn", "tbel");
    }

    static List<String> javascript() {
        return List.of("graaljs", "nashorn");
    }

    static Engines of(String name) {
        return switch (name) {
            case "graaljs" -> new Engines() {
                final GraalJsScripts scripts = new GraalJsScripts(output);

                @Override
                String name() {
                    return name;
                }

                @Override
                String run(ScriptInvocation inv, String script, String msgJson, Duration timeout) {
                    return scripts.run(inv, script, msgJson, "{}", "POST_TELEMETRY_REQUEST", timeout);
                }

                @Override
                int activeRuns() {
                    return scripts.activeRuns();
                }

                @Override
                public void close() {
                    scripts.close();
                }
            };
            case "nashorn" -> new Engines() {
                final StringWriter writer = new StringWriter();
                final NashornScripts scripts = new NashornScripts(writer);

                @Override
                synchronized String output() {
                    return writer.toString();
                }

                @Override
                String name() {
                    return name;
                }

                @Override
                String run(ScriptInvocation inv, String script, String msgJson, Duration timeout) {
                    return scripts.run(inv, script, msgJson, "{}", "POST_TELEMETRY_REQUEST", timeout);
                }

                @Override
                int activeRuns() {
                    return scripts.activeRuns();
                }
            };
            case "tbel" -> new Engines() {
                final TbelScripts scripts = new TbelScripts();

                @Override
                String name() {
                    return name;
                }

                @Override
                String run(ScriptInvocation inv, String script, String msgJson, Duration timeout) {
                    return scripts.run(inv, script, msgJson, "{}", "POST_TELEMETRY_REQUEST", timeout);
                }

                @Override
                int activeRuns() {
                    return scripts.activeRuns();
                }
            };
            default -> throw new IllegalArgumentException(name);
        };
    }
}
