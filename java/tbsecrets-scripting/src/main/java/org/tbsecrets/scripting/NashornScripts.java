package org.tbsecrets.scripting;

import java.io.Writer;
import java.time.Duration;
import java.util.Objects;
import java.util.Set;
import java.util.function.Function;
import javax.script.Bindings;
import javax.script.ScriptContext;
import javax.script.ScriptEngine;
import javax.script.ScriptException;
import javax.script.SimpleScriptContext;
import org.openjdk.nashorn.api.scripting.AbstractJSObject;
import org.openjdk.nashorn.api.scripting.NashornScriptEngineFactory;

/**
 * Runs ThingsBoard-style script node functions in Nashorn (the engine of ThingsBoard's local
 * JavaScript executor) with {@code secretStorage} bound.
 *
 * <p>The engine ({@link #newEngine}) runs with {@code --no-java} (no {@code Java},
 * {@code Packages} or {@code java.*} globals) and a {@code ClassFilter} that exposes no Java class.
 * {@code secretStorage} and its handles are bound as {@code JSObject}s ({@link #bind}), not as
 * Java objects, so a script sees {@code getSecret} and {@code ref} and nothing else — no
 * {@code getClass}, no fields — and a handle turns into {@code [secret NAME]} in every string
 * conversion, {@code JSON.stringify} included.
 *
 * <p>Timeout: the run's worker thread is interrupted and the invocation closed, so the script's
 * next {@code secretStorage} call fails and ends it. Nashorn cannot stop a loop that never calls
 * the host; cutting those off is the job of the host's sandbox (ThingsBoard instruments loops
 * with delight-nashorn-sandbox). Such a run is reported after {@link ScriptRuns#STOP_GRACE}, and
 * its closed invocation can read no secret.
 *
 * <p>Thread-safe: each run gets its own global scope. Share one instance.
 */
public final class NashornScripts {
    private final ScriptEngine engine;
    private final Writer out;
    private final ScriptRuns runs = new ScriptRuns("nashorn");

    /**
     * A runner whose scripts' {@code print} goes to {@code out}.
     *
     * @param out where script output goes (the host's log)
     */
    public NashornScripts(Writer out) {
        this.out = Objects.requireNonNull(out, "out");
        this.engine = newEngine();
    }

    /**
     * A locked-down Nashorn engine (see the class comment).
     *
     * @return the engine
     */
    public static ScriptEngine newEngine() {
        return new NashornScriptEngineFactory().getScriptEngine(
                new String[] {"--no-java", "--language=es6"},
                NashornScripts.class.getClassLoader(),
                className -> false);
    }

    /**
     * Binds {@code secretStorage} into a Nashorn scope.
     *
     * @param bindings the engine-scope bindings of a run
     * @param inv the invocation whose object to bind
     */
    public static void bind(Bindings bindings, ScriptInvocation inv) {
        bindings.put("secretStorage", new JsSecretStorage(inv.scriptObject()));
    }

    /**
     * Runs a script node function for one message.
     *
     * @param inv the message's invocation
     * @param script the function body
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
        ScriptContext context = new SimpleScriptContext();
        Bindings bindings = engine.createBindings();
        context.setBindings(bindings, ScriptContext.ENGINE_SCOPE);
        context.setWriter(out);
        context.setErrorWriter(out);
        bind(bindings, inv);
        return runs.run(inv, () -> {
            try {
                // One eval (not a call afterwards), so that print() writes to this run's writer.
                bindings.put("__tbsecrets_msg", msgJson);
                bindings.put("__tbsecrets_metadata", metadataJson);
                bindings.put("__tbsecrets_msgType", msgType);
                return String.valueOf(engine.eval(Wrapper.wrap(script)
                        + "(__tbsecrets_msg, __tbsecrets_metadata, __tbsecrets_msgType)", context));
            } catch (ScriptException | RuntimeException e) {
                throw new ScriptExecutionException("nashorn script failed: " + e.getMessage(), null, false);
            }
        }, timeout, () -> { });
    }

    /**
     * Runs in flight (0 when idle: no worker thread is left behind).
     *
     * @return the count
     */
    public int activeRuns() {
        return runs.active();
    }

    /** A script-callable function backed by Java. */
    private static final class JsFunction extends AbstractJSObject {
        private final String name;
        private final Function<Object[], Object> body;

        JsFunction(String name, Function<Object[], Object> body) {
            this.name = name;
            this.body = body;
        }

        @Override
        public boolean isFunction() {
            return true;
        }

        @Override
        public Object call(Object thiz, Object... args) {
            return body.apply(args);
        }

        @Override
        public Object getMember(String member) {
            return null;
        }

        @Override
        public String toString() {
            return "function " + name + "() { [native code] }";
        }
    }

    /** {@code secretStorage} as Nashorn sees it. */
    static final class JsSecretStorage extends AbstractJSObject {
        private static final Set<String> MEMBERS = Set.of("getSecret", "ref");
        private final JsFunction getSecret;
        private final JsFunction ref;

        JsSecretStorage(ScriptSecretStorage target) {
            this.getSecret = new JsFunction("getSecret", args -> target.getSecret(name(args)));
            this.ref = new JsFunction("ref", args -> new JsHandle(target.ref(name(args))));
        }

        private static String name(Object[] args) {
            if (args.length != 1 || !(args[0] instanceof CharSequence)) {
                throw new IllegalArgumentException("expected one argument: the secret's name");
            }
            return args[0].toString();
        }

        @Override
        public Object getMember(String member) {
            return switch (member) {
                case "getSecret" -> getSecret;
                case "ref" -> ref;
                default -> null;
            };
        }

        @Override
        public boolean hasMember(String member) {
            return MEMBERS.contains(member);
        }

        @Override
        public Object getDefaultValue(Class<?> hint) {
            return toString();
        }

        @Override
        public String toString() {
            return "[object SecretStorage]";
        }
    }

    /** A {@link SecretHandle} as Nashorn sees it: text only. */
    static final class JsHandle extends AbstractJSObject {
        private final String text;
        private final JsFunction toText;

        JsHandle(SecretHandle handle) {
            this.text = handle.toString();
            this.toText = new JsFunction("toString", args -> text);
        }

        @Override
        public Object getMember(String member) {
            return switch (member) {
                case "toString", "toJSON", "valueOf" -> toText;
                default -> null;
            };
        }

        @Override
        public boolean hasMember(String member) {
            return member.equals("toString") || member.equals("toJSON") || member.equals("valueOf");
        }

        @Override
        public Object getDefaultValue(Class<?> hint) {
            return text;
        }

        @Override
        public String toString() {
            return text;
        }
    }
}
