package org.tbsecrets.examples.scripting;

import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.tbsecrets.SecretStorage;
import org.tbsecrets.SecretStorageOptions;
import org.tbsecrets.SecretType;
import org.tbsecrets.scripting.GraalJsScripts;
import org.tbsecrets.scripting.NashornScripts;
import org.tbsecrets.scripting.NodeSecrets;
import org.tbsecrets.scripting.ScriptInvocation;
import org.tbsecrets.scripting.TbelScripts;

/**
 * A script rule node in each engine running the ThingsBoard documentation's line
 *
 * <pre>{@code
 * var apiKey = secretStorage.getSecret('MyApiKey');
 * }</pre>
 *
 * <p>with a per-node allow-list: the node acts as {@code SERVICE} of its tenant with the id
 * {@code rule-node:<nodeId>} and may read {@code MyApiKey} and nothing else.
 */
public final class ScriptNodeExample {
    /** The script of the node (JavaScript and TBEL alike). */
    public static final String SCRIPT = "var apiKey = secretStorage.getSecret('MyApiKey');\n"
            + "msg.authorized = apiKey.length > 0;\n"
            + "return {msg: msg, metadata: metadata, msgType: msgType};";

    private ScriptNodeExample() {}

    /**
     * Runs the node's script for one message in GraalJS, Nashorn and TBEL.
     *
     * @param store the store
     * @param tenantId the rule chain's tenant
     * @param nodeId the node's id
     * @return engine name → the script's output message (JSON)
     */
    public static Map<String, String> run(SecretStorage store, String tenantId, String nodeId) {
        Map<String, String> out = new LinkedHashMap<>();
        Duration timeout = Duration.ofSeconds(30);
        String msg = "{\"temperature\": 21.5}";
        String metadata = "{\"deviceName\": \"thermostat-1\"}";
        try (NodeSecrets node = NodeSecrets.open(store, tenantId, nodeId, List.of("MyApiKey"));
                GraalJsScripts graalJs = new GraalJsScripts(System.out)) {
            try (ScriptInvocation inv = node.begin()) {
                out.put("graaljs", graalJs.run(inv, SCRIPT, msg, metadata, "POST_TELEMETRY_REQUEST", timeout));
            }
            try (ScriptInvocation inv = node.begin()) {
                NashornScripts nashorn = new NashornScripts(new PrintWriter(System.out, true, StandardCharsets.UTF_8));
                out.put("nashorn", nashorn.run(inv, SCRIPT, msg, metadata, "POST_TELEMETRY_REQUEST", timeout));
            }
            try (ScriptInvocation inv = node.begin()) {
                out.put("tbel", new TbelScripts().run(inv, SCRIPT, msg, metadata, "POST_TELEMETRY_REQUEST", timeout));
            }
        }
        return out;
    }

    /**
     * Runs the example on a temporary store and prints each engine's output message (which holds
     * no secret).
     *
     * @param args unused
     * @throws Exception if the temporary directory cannot be created
     */
    public static void main(String[] args) throws Exception {
        Path dir = Files.createTempDirectory("tbsecrets-script-node");
        byte[] key = new byte[32];
        new SecureRandom().nextBytes(key);
        try (SecretStorage store = SecretStorage.open(dir.resolve("tbsecrets.db"), SecretStorageOptions.withMasterKey(key))) {
            store.create("tenant-a", "MyApiKey", SecretType.TEXT, "s3cr3t".toCharArray(), "partner API key");
            run(store, "tenant-a", "node-1").forEach((engine, msg) -> System.out.println(engine + ": " + msg));
        }
    }
}
