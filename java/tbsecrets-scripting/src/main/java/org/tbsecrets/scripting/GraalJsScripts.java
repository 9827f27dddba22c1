package org.tbsecrets.scripting;

import java.io.OutputStream;
import java.time.Duration;
import java.util.Objects;
import org.graalvm.polyglot.Context;
import org.graalvm.polyglot.Engine;
import org.graalvm.polyglot.EnvironmentAccess;
import org.graalvm.polyglot.HostAccess;
import org.graalvm.polyglot.PolyglotAccess;
import org.graalvm.polyglot.PolyglotException;
import org.graalvm.polyglot.Value;
import org.graalvm.polyglot.io.IOAccess;

/**
 * Runs ThingsBoard-style script node functions in GraalJS with {@code secretStorage} bound.
 *
 * <p>Each run gets a fresh, locked-down {@link Context} ({@link #contextBuilder}): host access
 * {@link HostAccess#EXPLICIT} (a script reaches only the {@code @HostAccess.Export} methods
 * {@code getSecret}, {@code ref} and {@code toString} — no {@code getClass}, no Java fields), no
 * host class lookup (the {@code Java} global is absent), no I/O, threads, processes, native or
 * environment access, no other languages. The script is the body of ThingsBoard's
 * {@code function(msg, metadata, msgType)}; its return value comes back as JSON text (a string
 * return value as is). A run that exceeds its timeout is cancelled with
 * {@link Context#close(boolean) close(true)}.
 *
 * <p>Thread-safe; share one instance (its {@link Engine} caches compiled code). Close it at
 * shutdown.
 */
public final class GraalJsScripts implements AutoCloseable {
    private final Engine engine;
    private final OutputStream out;
    private final ScriptRuns runs = new ScriptRuns("graaljs");

    /**
     * A runner whose scripts' {@code console.log} goes to {@code out}.
     *
     * @param out where script output goes (the host's log)
     */
    public GraalJsScripts(OutputStream out) {
        this.out = Objects.requireNonNull(out, "out");
        this.engine = Engine.newBuilder("js")
                .option("engine.WarnInterpreterOnly", "false")
                .out(out)
                .err(out)
                .build();
    }

    /**
     * A locked-down context builder (see the class comment) on a shared engine.
     *
     * @param engine the engine, or {@code null} for a context of its own
     * @return the builder
     */
    public static Context.Builder contextBuilder(Engine engine) {
        Context.Builder b = Context.newBuilder("js")
                .allowHostAccess(HostAccess.EXPLICIT)
                .allowIO(IOAccess.NONE)
                .allowCreateThread(false)
                .allowCreateProcess(false)
                .allowNativeAccess(false)
                .allowEnvironmentAccess(EnvironmentAccess.NONE)
                .allowPolyglotAccess(PolyglotAccess.NONE)
                .allowExperimentalOptions(false);
        if (engine != null) {
            b.engine(engine);
        } else {
            b.option("engine.WarnInterpreterOnly", "false");
        }
        return b;
    }

    /**
     * Binds {@code secretStorage} into a context.
     *
     * @param context a JavaScript context
     * @param inv the invocation whose object to bind
     */
    public static void bind(Context context, ScriptInvocation inv) {
        context.getBindings("js").putMember("secretStorage", inv.scriptObject());
    }

    /**
     * Runs a script node function for one message.
     *
     * @param inv the message's invocation
     * @param script the function body, e.g. {@code var apiKey = secretStorage.getSecret('MyApiKey'); return msg;}
     * @param msgJson the message as JSON
     * @param metadataJson the metadata as a JSON object
     * @param msgType the message type
     * @param timeout how long the script may run
     * @return the return value: a string as is, anything else as JSON text
     * @throws ScriptExecutionException if the script throws, does not compile or times out
     */
    public String run(ScriptInvocation inv, String script, String msgJson, String metadataJson, String msgType,
            Duration timeout) {
        Objects.requireNonNull(script, "script");
        Context context = contextBuilder(engine).out(out).err(out).build();
        try {
            bind(context, inv);
            return runs.run(inv, () -> {
                try {
                    Value fn = context.eval("js", Wrapper.wrap(script));
                    return fn.execute(msgJson, metadataJson, msgType).asString();
                } catch (PolyglotException e) {
                    throw new ScriptExecutionException("graaljs script failed: " + e.getMessage(), null, e.isCancelled());
                }
            }, timeout, () -> context.close(true));
        } finally {
            context.close(true);
        }
    }

    /**
     * Runs in flight (0 when idle: no context or worker thread is left behind).
     *
     * @return the count
     */
    public int activeRuns() {
        return runs.active();
    }

    /** Closes the shared engine. */
    @Override
    public void close() {
        engine.close();
    }
}
