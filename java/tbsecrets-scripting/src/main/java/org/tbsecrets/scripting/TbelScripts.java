package org.tbsecrets.scripting;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.module.SimpleModule;
import com.fasterxml.jackson.databind.ser.std.ToStringSerializer;
import java.io.Serializable;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Objects;
import org.mvel2.ExecutionContext;
import org.mvel2.MVEL;
import org.mvel2.ParserContext;
import org.mvel2.SandboxedParserConfiguration;
import org.mvel2.optimizers.OptimizerFactory;

/**
 * Runs TBEL (ThingsBoard's MVEL-based script language) script node functions with
 * {@code secretStorage} bound, the way ThingsBoard's {@code DefaultTbelInvokeService} does:
 * sandboxed mode, the safe reflective optimizer, one {@link ExecutionContext} with a memory limit
 * per run, and {@link ExecutionContext#stop()} when the run exceeds its timeout.
 *
 * <p>{@link #register} makes {@link ScriptSecretStorage} and {@link SecretHandle} known to the
 * sandbox (a host that has its own parser configuration calls it there): a script can call
 * {@code getSecret} and {@code ref}; {@code getClass()} and Java packages stay out of reach. The
 * script is the body of the node's function of {@code msg}, {@code metadata} and
 * {@code msgType}; its return value comes back as JSON text (a string as is; handles as their
 * {@code [secret NAME]} text).
 *
 * <p>Note that {@code MVEL}'s sandboxed mode is global to the class loader, as in ThingsBoard.
 * Thread-safe; share one instance.
 */
public final class TbelScripts {
    /** The memory limit of one run, ThingsBoard's default ({@code tbel.max_memory_limit_mb}). */
    public static final long MAX_MEMORY_BYTES = 8L * 1024 * 1024;

    private static final ObjectMapper JSON = new ObjectMapper()
            .registerModule(new SimpleModule().addSerializer(SecretHandle.class, ToStringSerializer.instance));
    private static final TypeReference<Map<String, Object>> MAP = new TypeReference<>() { };

    private final SandboxedParserConfiguration parserConfig;
    private final ScriptRuns runs = new ScriptRuns("tbel");

    /** A runner with its own sandboxed parser configuration. */
    public TbelScripts() {
        OptimizerFactory.setDefaultOptimizer(OptimizerFactory.SAFE_REFLECTIVE);
        parserConfig = ParserContext.enableSandboxedMode();
        register(parserConfig);
    }

    /**
     * Registers the {@code secretStorage} types with a sandboxed TBEL parser configuration.
     *
     * @param config the host's configuration
     */
    public static void register(SandboxedParserConfiguration config) {
        config.registerDataType("SecretStorage", ScriptSecretStorage.class, s -> 8L);
        config.registerDataType("SecretHandle", SecretHandle.class, h -> 8L);
    }

    /**
     * Runs a script node function for one message.
     *
     * @param inv the message's invocation
     * @param script the function body, e.g. {@code var apiKey = secretStorage.getSecret('MyApiKey'); return msg;}
     * @param msgJson the message as a JSON object
     * @param metadataJson the metadata as a JSON object
     * @param msgType the message type
     * @param timeout how long the script may run
     * @return the return value: a string as is, anything else as JSON text
     * @throws ScriptExecutionException if the script throws, does not compile or times out, or
     *     the message is not a JSON object
     */
    public String run(ScriptInvocation inv, String script, String msgJson, String metadataJson, String msgType,
            Duration timeout) {
        Objects.requireNonNull(script, "script");
        Map<String, Object> vars = new HashMap<>();
        vars.put("msg", parse(msgJson, "msg"));
        vars.put("metadata", parse(metadataJson, "metadata"));
        vars.put("msgType", Objects.requireNonNull(msgType, "msgType"));
        vars.put("secretStorage", inv.scriptObject());
        ExecutionContext context = new ExecutionContext(parserConfig, MAX_MEMORY_BYTES);
        return runs.run(inv, () -> {
            Object result;
            try {
                Serializable compiled = MVEL.compileExpression(script, new ParserContext());
                result = MVEL.executeTbExpression(compiled, context, vars);
            } catch (RuntimeException e) {
                throw new ScriptExecutionException("tbel script failed: " + e.getMessage(), null, false);
            }
            if (result instanceof CharSequence s) {
                return s.toString();
            }
            try {
                return JSON.writeValueAsString(result);
            } catch (JsonProcessingException e) {
                throw new ScriptExecutionException("tbel script returned a value that is not JSON: "
                        + e.getOriginalMessage(), null, false);
            }
        }, timeout, context::stop);
    }

    /**
     * Runs in flight (0 when idle: no worker thread is left behind).
     *
     * @return the count
     */
    public int activeRuns() {
        return runs.active();
    }

    private static Map<String, Object> parse(String json, String what) {
        Objects.requireNonNull(json, what);
        try {
            return JSON.readValue(json, MAP);
        } catch (JsonProcessingException e) {
            throw new ScriptExecutionException(what + " is not a JSON object: " + e.getOriginalMessage(), null, false);
        }
    }
}
