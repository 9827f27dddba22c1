package org.tbsecrets.examples;

import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.LinkedHashMap;
import java.util.Map;
import org.tbsecrets.SecretStorage;
import org.tbsecrets.SecretStorageOptions;
import org.tbsecrets.SecretType;
import org.tbsecrets.TenantSecrets;

/**
 * What a ThingsBoard script node (TBEL or JavaScript) gets: a {@code secretStorage} object bound
 * to the rule chain's tenant, so a script writes
 *
 * <pre>{@code
 * var apiKey = secretStorage.getSecret("MyApiKey");
 * msg.auth = "Bearer " + apiKey;
 * return {msg: msg, metadata: metadata, msgType: msgType};
 * }</pre>
 *
 * <p>and can only read its own tenant's secrets. {@link #bindings} is what the script engine
 * would receive; {@link #transform} is the script above written in Java.
 */
public final class ScriptSecretsExample {
    private ScriptSecretsExample() {}

    /**
     * The variables a script engine exposes to a tenant's scripts.
     *
     * @param store the process-wide store
     * @param tenantId the rule chain's tenant
     * @return {@code secretStorage} → the tenant-bound facade
     */
    public static Map<String, Object> bindings(SecretStorage store, String tenantId) {
        return Map.of("secretStorage", store.forTenant(tenantId));
    }

    /**
     * The example script: adds an Authorization header built from a secret to the message.
     *
     * @param secretStorage the tenant-bound facade the script sees
     * @param msg the message fields
     * @return the transformed message
     */
    public static Map<String, Object> transform(TenantSecrets secretStorage, Map<String, Object> msg) {
        Map<String, Object> out = new LinkedHashMap<>(msg);
        out.put("auth", "Bearer " + secretStorage.getSecret("MyApiKey"));
        return out;
    }

    /**
     * Runs the example on a temporary store and prints the transformed message's keys (never the
     * secret).
     *
     * @param args unused
     * @throws Exception if the temporary directory cannot be created
     */
    public static void main(String[] args) throws Exception {
        Path dir = Files.createTempDirectory("tbsecrets-script-example");
        byte[] key = new byte[32];
        new SecureRandom().nextBytes(key);
        try (SecretStorage store = SecretStorage.open(dir.resolve("tbsecrets.db"), SecretStorageOptions.withMasterKey(key))) {
            store.create("tenant-a", "MyApiKey", SecretType.TEXT, "s3cr3t".toCharArray(), "partner API key");
            TenantSecrets secretStorage = (TenantSecrets) bindings(store, "tenant-a").get("secretStorage");
            Map<String, Object> msg = transform(secretStorage, Map.of("temperature", 21.5));
            System.out.println("script output keys: " + msg.keySet());
        }
    }
}
