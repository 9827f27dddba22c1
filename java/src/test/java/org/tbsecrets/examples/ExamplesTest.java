package org.tbsecrets.examples;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.tbsecrets.InUseException;
import org.tbsecrets.NotFoundException;
import org.tbsecrets.SecretStorage;
import org.tbsecrets.SecretStorageOptions;
import org.tbsecrets.SecretType;
import org.tbsecrets.SecretUsage;
import org.tbsecrets.TenantSecrets;
import org.tbsecrets.UnresolvedPlaceholderException;

/** The examples of {@code examples/java} do what docs/JAVA.md ("Examples") says. */
class ExamplesTest {
    private static final String TENANT = "13814000-1dd2-11b2-8080-808080808080";

    @TempDir Path dir;

    private static SecretStorage open(Path dir) {
        byte[] key = new byte[32];
        new SecureRandom().nextBytes(key);
        return SecretStorage.open(dir.resolve("tb.db"), SecretStorageOptions.withMasterKey(key));
    }

    /** A recording rule-engine context. */
    static final class Ctx implements SecretAwareRestApiCallNode.Context {
        final SecretStorage store;
        final List<SecretAwareRestApiCallNode.Msg> success = new ArrayList<>();
        final List<Throwable> failures = new ArrayList<>();

        Ctx(SecretStorage store) {
            this.store = store;
        }

        @Override
        public String tenantId() {
            return TENANT;
        }

        @Override
        public String nodeId() {
            return "6e7a2f50-0000-0000-0000-000000000001";
        }

        @Override
        public SecretStorage secretStorage() {
            return store;
        }

        @Override
        public void tellSuccess(SecretAwareRestApiCallNode.Msg msg) {
            success.add(msg);
        }

        @Override
        public void tellFailure(SecretAwareRestApiCallNode.Msg msg, Throwable cause) {
            failures.add(cause);
        }
    }

    @Test
    void ruleNodePicksUpARotatedSecretWithoutRestart() throws Exception {
        String config = Files.readString(
                Path.of(System.getProperty("tbsecrets.fixtures", "../examples/configs")).resolve("rest_api_call_node.json"));
        try (SecretStorage store = open(dir)) {
            store.create(TENANT, "partner-api-token", SecretType.TEXT, "tok-1".getBytes(UTF_8), "");
            store.create(TENANT, "partner-basic-password", SecretType.TEXT, "pw \"1\"".getBytes(UTF_8), "");
            List<SecretAwareRestApiCallNode.Request> sent = new ArrayList<>();
            Ctx ctx = new Ctx(store);
            SecretAwareRestApiCallNode node = new SecretAwareRestApiCallNode(sent::add);
            node.init(ctx, config);
            assertEquals(List.of(new SecretUsage("rule-node:" + ctx.nodeId(), "partner-api-token", SecretType.TEXT)),
                    store.whereUsed(TENANT, "partner-api-token"));
            assertThrows(InUseException.class, () -> store.delete(TENANT, "partner-api-token"));

            var msg = new SecretAwareRestApiCallNode.Msg("POST_TELEMETRY_REQUEST",
                    Map.of("deviceName", "pump-7", "deviceType", "pump"), "{\"t\":21}");
            node.onMsg(ctx, msg);
            var first = sent.get(0);
            assertEquals("https://api.partner.example/v1/devices/pump-7/telemetry", first.url());
            assertEquals("Bearer tok-1", first.headers().get("Authorization"));
            assertEquals("pump", first.headers().get("X-Device-Type"));
            assertEquals("tb-forwarder", first.basicAuthUser());
            assertEquals("pw \"1\"", first.basicAuthPassword());
            assertFalse(first.toString().contains("tok-1"), "the request never prints secrets");

            store.updateValue(TENANT, "partner-api-token", "tok-2".getBytes(UTF_8));
            node.onMsg(ctx, msg);
            assertEquals("Bearer tok-2", sent.get(1).headers().get("Authorization"), "rotation picked up");

            store.delete(TENANT, "partner-basic-password", true);
            node.onMsg(ctx, msg);
            assertEquals(2, sent.size());
            assertInstanceOf(UnresolvedPlaceholderException.class, ctx.failures.get(0));
            assertEquals(2, ctx.success.size());

            node.destroy(ctx);
            assertEquals(List.of(), store.whereUsed(TENANT, "partner-api-token"));

            store.flushUsage();
            assertTrue(Files.readAllLines(store.auditLogPath().orElseThrow(), UTF_8).stream().anyMatch(line ->
                            line.contains("\"RESOLVE\"") && line.contains("\"SERVICE\"")
                                    && line.contains("\"rule-node:" + ctx.nodeId() + "\"")),
                    "the node's uses are audited as its SERVICE session");
        }
    }

    @Test
    void scriptFacade() {
        try (SecretStorage store = open(dir)) {
            store.create(TENANT, "MyApiKey", SecretType.TEXT, "s3cr3t".toCharArray(), "");
            TenantSecrets secretStorage = (TenantSecrets) ScriptSecretsExample.bindings(store, TENANT).get("secretStorage");
            Map<String, Object> out = ScriptSecretsExample.transform(secretStorage, Map.of("temperature", 21.5));
            assertEquals("Bearer s3cr3t", out.get("auth"));
            assertEquals(21.5, out.get("temperature"));
            assertThrows(NotFoundException.class,
                    () -> ((TenantSecrets) ScriptSecretsExample.bindings(store, "other-tenant").get("secretStorage"))
                            .getSecret("MyApiKey"), "a script only sees its own tenant");
        }
    }

    @Test
    void scriptExampleMainRuns() throws Exception {
        ScriptSecretsExample.main(new String[0]);
        assertTrue(true);
    }
}
