package org.tbsecrets.scripting.bench;

import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.concurrent.TimeUnit;
import javax.script.Bindings;
import javax.script.ScriptContext;
import javax.script.ScriptEngine;
import javax.script.SimpleScriptContext;
import org.graalvm.polyglot.Context;
import org.graalvm.polyglot.HostAccess;
import org.graalvm.polyglot.Value;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.nashorn.api.scripting.AbstractJSObject;
import org.openjdk.nashorn.api.scripting.JSObject;
import org.tbsecrets.SecretStorage;
import org.tbsecrets.SecretStorageOptions;
import org.tbsecrets.SecretType;
import org.tbsecrets.scripting.GraalJsScripts;
import org.tbsecrets.scripting.NashornScripts;
import org.tbsecrets.scripting.NodeSecrets;
import org.tbsecrets.scripting.ScriptInvocation;

/**
 * {@code secretStorage.getSecret('MyApiKey')} called from a script vs. a host method returning a
 * constant string called the same way from the same script, in GraalJS and in Nashorn (goal:
 * at most 1.5×). Each script function makes 10 calls, so the figures are per 10 calls.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class ScriptGetSecretBenchmark {
    /** The baseline: a host method returning a constant. */
    public static final class Constant {
        /**
         * A constant, whatever the name.
         *
         * @param name ignored
         * @return a constant string
         */
        @HostAccess.Export
        public String getSecret(String name) {
            return "constant-value-of-the-same-size";
        }
    }

    /** The baseline bound the way Nashorn gets {@code secretStorage}: a {@code JSObject} with a function member. */
    public static final class ConstantJsObject extends AbstractJSObject {
        private final AbstractJSObject getSecret = new AbstractJSObject() {
            @Override
            public boolean isFunction() {
                return true;
            }

            @Override
            public Object call(Object thiz, Object... args) {
                return "constant-value-of-the-same-size";
            }
        };

        @Override
        public Object getMember(String name) {
            return "getSecret".equals(name) ? getSecret : null;
        }

        @Override
        public boolean hasMember(String name) {
            return "getSecret".equals(name);
        }
    }

    private static final String LOOP = "var s = ''; for (var i = 0; i < 10; i++) { s = OBJ.getSecret('MyApiKey'); } return s;";

    private Path dir;
    private SecretStorage store;
    private NodeSecrets node;
    private ScriptInvocation inv;
    private Context graal;
    private Value graalSecret;
    private Value graalConstant;
    private JSObject nashornSecret;
    private JSObject nashornConstant;
    private JSObject nashornConstantJsObject;

    /**
     * Opens a store with one secret and prepares both engines.
     *
     * @throws Exception if the temporary directory cannot be created or a script fails
     */
    @Setup(Level.Trial)
    public void setUp() throws Exception {
        dir = Files.createTempDirectory("tbsecrets-script-bench");
        byte[] key = new byte[32];
        new SecureRandom().nextBytes(key);
        store = SecretStorage.open(dir.resolve("tb.db"), SecretStorageOptions.withMasterKey(key));
        store.create("tenant-a", "MyApiKey", SecretType.TEXT, "s3cr3t-value-of-the-same-size!!".toCharArray(), "");
        node = NodeSecrets.open(store, "tenant-a", "bench-node");
        inv = node.begin();

        graal = GraalJsScripts.contextBuilder(null).build();
        GraalJsScripts.bind(graal, inv);
        graal.getBindings("js").putMember("constants", new Constant());
        graalSecret = graal.eval("js", "(function() {" + LOOP.replace("OBJ", "secretStorage") + "})");
        graalConstant = graal.eval("js", "(function() {" + LOOP.replace("OBJ", "constants") + "})");

        ScriptEngine nashorn = NashornScripts.newEngine();
        ScriptContext context = new SimpleScriptContext();
        Bindings bindings = nashorn.createBindings();
        context.setBindings(bindings, ScriptContext.ENGINE_SCOPE);
        NashornScripts.bind(bindings, inv);
        bindings.put("constants", new Constant());
        bindings.put("constantsJs", new ConstantJsObject());
        nashornSecret = (JSObject) nashorn.eval("(function() {" + LOOP.replace("OBJ", "secretStorage") + "})", context);
        nashornConstant = (JSObject) nashorn.eval("(function() {" + LOOP.replace("OBJ", "constants") + "})", context);
        nashornConstantJsObject = (JSObject) nashorn.eval("(function() {" + LOOP.replace("OBJ", "constantsJs") + "})", context);
    }

    /** Closes everything. */
    @TearDown(Level.Trial)
    public void tearDown() {
        graal.close();
        inv.close();
        node.close();
        store.close();
    }

    /**
     * GraalJS: 10 × {@code secretStorage.getSecret}.
     *
     * @return the last value
     */
    @Benchmark
    public String graalJsGetSecret() {
        return graalSecret.execute().asString();
    }

    /**
     * GraalJS: 10 × a host method returning a constant.
     *
     * @return the constant
     */
    @Benchmark
    public String graalJsConstant() {
        return graalConstant.execute().asString();
    }

    /**
     * Nashorn: 10 × {@code secretStorage.getSecret}.
     *
     * @return the last value
     */
    @Benchmark
    public Object nashornGetSecret() {
        return nashornSecret.call(null);
    }

    /**
     * Nashorn: 10 × a host method returning a constant.
     *
     * @return the constant
     */
    @Benchmark
    public Object nashornConstant() {
        return nashornConstant.call(null);
    }

    /**
     * Nashorn: 10 × a constant from a {@code JSObject} function member (the binding
     * {@code secretStorage} uses).
     *
     * @return the constant
     */
    @Benchmark
    public Object nashornConstantJsObject() {
        return nashornConstantJsObject.call(null);
    }
}
