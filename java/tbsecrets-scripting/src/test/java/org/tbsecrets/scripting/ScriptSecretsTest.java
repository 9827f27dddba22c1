package org.tbsecrets.scripting;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.tbsecrets.SecretStorage;
import org.tbsecrets.SecretStorageOptions;
import org.tbsecrets.SecretType;

/** secretStorage in GraalJS, Nashorn and TBEL: the documentation's line, errors, types, tenants, audit, timeouts. */
class ScriptSecretsTest {
    static final String TENANT = "0d2f7a10-1dd2-11b2-8080-808080808080";
    static final String OTHER_TENANT = "5c1e0b20-1dd2-11b2-8080-808080808080";
    static final String NODE = "6e7a2f50-0000-0000-0000-000000000001";
    static final String VALUE = "s3cr3t-Value-42";
    static final String DOC_LINE = "var apiKey = secretStorage.getSecret('MyApiKey');\nreturn apiKey;";

    @TempDir Path dir;
    final List<String> audit = new CopyOnWriteArrayList<>();
    SecretStorage store;
    NodeSecrets node;

    @BeforeEach
    void open() {
        byte[] key = new byte[32];
        new SecureRandom().nextBytes(key);
        store = SecretStorage.open(dir.resolve("tb.db"),
                SecretStorageOptions.builder().masterKey(key).createIfMissing(true).auditListener(audit::add).build());
        store.create(TENANT, "MyApiKey", SecretType.TEXT, VALUE.toCharArray(), "partner API key");
        store.create(TENANT, "ca.pem", SecretType.TEXT_FILE,
                "-----BEGIN CERTIFICATE-----\nMIIB\u00e9\n-----END CERTIFICATE-----\n".getBytes(UTF_8), "CA");
        store.create(TENANT, "blob.bin", SecretType.TEXT_FILE, new byte[] {(byte) 0xff, (byte) 0xfe, 0x00}, "binary");
        store.create(OTHER_TENANT, "OtherKey", SecretType.TEXT, "other-tenant-value".toCharArray(), "");
        node = NodeSecrets.open(store, TENANT, NODE);
    }

    @AfterEach
    void close() {
        node.close();
        store.close();
    }

    static List<String> engines() {
        return Engines.names();
    }

    static List<String> javascript() {
        return Engines.javascript();
    }

    @ParameterizedTest
    @MethodSource("engines")
    void theDocumentationLineReturnsTheValue(String engine) {
        try (Engines e = Engines.of(engine); ScriptInvocation inv = node.begin()) {
            assertEquals(VALUE, e.run(inv, DOC_LINE));
        }
    }

    @ParameterizedTest
    @MethodSource("engines")
    void aMissingSecretIsAScriptErrorNamingIt(String engine) {
        try (Engines e = Engines.of(engine); ScriptInvocation inv = node.begin()) {
            ScriptExecutionException ex = assertThrows(ScriptExecutionException.class,
                    () -> e.run(inv, "var v = secretStorage.getSecret('NoSuchKey');\nreturn 'got:' + v;"));
            assertTrue(ex.getMessage().contains("NoSuchKey"), ex.getMessage());
            assertFalse(ex.timedOut());
            ScriptExecutionException refEx = assertThrows(ScriptExecutionException.class,
                    () -> e.run(inv, "var h = secretStorage.ref('NoSuchKey');\nreturn 'got:' + h;"));
            assertTrue(refEx.getMessage().contains("NoSuchKey"), refEx.getMessage());
        }
    }

    @ParameterizedTest
    @MethodSource("engines")
    void aTextFileSecretIsReturnedAsItsText(String engine) {
        try (Engines e = Engines.of(engine); ScriptInvocation inv = node.begin()) {
            assertEquals("-----BEGIN CERTIFICATE-----\nMIIB\u00e9\n-----END CERTIFICATE-----\n",
                    e.run(inv, "return secretStorage.getSecret('ca.pem');"));
            ScriptExecutionException ex = assertThrows(ScriptExecutionException.class,
                    () -> e.run(inv, "return secretStorage.getSecret('blob.bin');"));
            assertTrue(ex.getMessage().contains("blob.bin") && ex.getMessage().contains("not UTF-8"), ex.getMessage());
        }
    }

    @ParameterizedTest
    @MethodSource("engines")
    void anotherTenantsSecretIsOutOfReach(String engine) {
        try (Engines e = Engines.of(engine); ScriptInvocation inv = node.begin()) {
            for (String name : List.of("OtherKey", "../" + OTHER_TENANT + "/OtherKey", OTHER_TENANT + "/OtherKey")) {
                ScriptExecutionException ex = assertThrows(ScriptExecutionException.class,
                        () -> e.run(inv, "return secretStorage.getSecret('" + name + "');"), name);
                assertFalse(ex.getMessage().contains("other-tenant-value"), ex.getMessage());
            }
        }
    }

    @ParameterizedTest
    @MethodSource("engines")
    void reflectionAndEnumerationAreUnavailable(String engine) {
        List<String> attempts = List.of(
                "return secretStorage.getClass().getName();",
                "return secretStorage.list();",
                "return secretStorage.list('" + TENANT + "');",
                "return secretStorage.invocation.node().session();",
                "return secretStorage.ref('MyApiKey').getClass().getName();",
                "return secretStorage.ref('MyApiKey').name();",
                engine.equals("tbel") ? "return java.lang.System.getenv();" : "return Java.type('java.lang.System').getenv();",
                engine.equals("tbel") ? "return Class.forName('java.lang.System');" : "return Packages.java.lang.System.getenv();",
                engine.equals("tbel") ? "return secretStorage.class;" : "return secretStorage.getSecret.constructor('return 1')().getClass();");
        try (Engines e = Engines.of(engine); ScriptInvocation inv = node.begin()) {
            for (String attempt : attempts) {
                ScriptExecutionException ex = assertThrows(ScriptExecutionException.class, () -> e.run(inv, attempt),
                        () -> engine + " let through: " + attempt);
                assertFalse(ex.getMessage().contains(VALUE), ex.getMessage());
            }
            if (!engine.equals("tbel")) {
                assertEquals("undefined,undefined", e.run(inv, "return typeof Java + ',' + typeof Packages;"));
            }
        }
    }

    @ParameterizedTest
    @MethodSource("engines")
    void readsAreAuditedAsTheRuleNode(String engine) {
        try (Engines e = Engines.of(engine); ScriptInvocation inv = node.begin()) {
            e.run(inv, DOC_LINE);
        }
        node.close();
        store.close();
        String record = audit.stream()
                .filter(r -> r.contains("\"names\":[\"MyApiKey\"]") && r.contains("\"outcome\":\"OK\"") && r.contains("\"action\":\"GET\""))
                .findFirst().orElseThrow(() -> new AssertionError("no GET record in " + audit));
        assertTrue(record.contains("\"role\":\"SERVICE\""), record);
        assertTrue(record.contains("\"principal\":\"rule-node:" + NODE + "\""), record);
        assertTrue(record.contains("\"tenant\":\"" + TENANT + "\""), record);
        assertFalse(audit.stream().anyMatch(r -> r.contains(VALUE)));
    }

    @ParameterizedTest
    @MethodSource("engines")
    void aScriptCutOffByTheTimeoutLeavesNothingBehind(String engine) {
        // Nashorn cannot stop a loop that never calls the host (see NashornScripts); this one does.
        String forever = engine.equals("nashorn")
                ? "while (true) { secretStorage.getSecret('MyApiKey'); }"
                : "var i = 0; while (true) { i = i + 1; }";
        try (Engines e = Engines.of(engine)) {
            ScriptInvocation inv = node.begin();
            ScriptExecutionException ex = assertThrows(ScriptExecutionException.class,
                    () -> e.run(inv, forever, "{}", Duration.ofMillis(200)));
            assertTrue(ex.timedOut(), ex.getMessage());
            assertTrue(inv.isClosed());
            assertEquals(0, node.openInvocations());
            assertEquals(0, e.activeRuns());
            assertTrue(Thread.getAllStackTraces().keySet().stream()
                    .noneMatch(t -> t.getName().startsWith(ScriptRuns.THREAD_PREFIX) && t.isAlive()));
            assertThrows(IllegalStateException.class, () -> inv.scriptObject().getSecret("MyApiKey"));
            // The node's session is intact: the next message works.
            try (ScriptInvocation next = node.begin()) {
                assertEquals(VALUE, e.run(next, DOC_LINE));
            }
            assertFalse(node.isClosed());
        }
    }

    @Test
    void closingTheNodeEndsItsInvocationsAndSession() {
        ScriptInvocation inv = node.begin();
        inv.scriptObject().ref("MyApiKey");
        assertEquals(1, node.openInvocations());
        node.close();
        assertTrue(inv.isClosed());
        assertTrue(node.isClosed());
        assertEquals(0, node.openInvocations());
        assertThrows(IllegalStateException.class, () -> inv.scriptObject().getSecret("MyApiKey"));
        assertThrows(IllegalStateException.class, () -> inv.substitute("[secret MyApiKey]"));
        assertThrows(IllegalStateException.class, node::begin);
    }

    @Test
    void thePrincipalIsTheTenantsServiceWithTheNodeAsId() {
        assertEquals("SERVICE", NodeSecrets.principal(TENANT, NODE).role().name());
        assertEquals(TENANT, NodeSecrets.principal(TENANT, NODE).tenantId());
        assertEquals("rule-node:" + NODE, NodeSecrets.principal(TENANT, NODE).id());
    }
}
