package org.tbsecrets.scripting;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.tbsecrets.InvalidArgumentException;
import org.tbsecrets.PermissionDeniedException;
import org.tbsecrets.SecretStorage;
import org.tbsecrets.SecretStorageOptions;
import org.tbsecrets.SecretType;

/** A per-node allow-list: exact names and globs pass, anything else is a script error and an audited denial. */
class AllowListTest {
    static final String TENANT = ScriptSecretsTest.TENANT;
    static final String NODE = "node-allow";

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
        for (String name : List.of("MyApiKey", "device-A-token", "device-B-token", "admin-password")) {
            store.create(TENANT, name, SecretType.TEXT, ("value-of-" + name).toCharArray(), "");
        }
        node = NodeSecrets.open(store, TENANT, NODE, List.of("MyApiKey", "device-*-token"));
    }

    @AfterEach
    void close() {
        node.close();
        store.close();
    }

    static List<String> engines() {
        return Engines.names();
    }

    @ParameterizedTest
    @MethodSource("engines")
    void allowedNamesAndGlobsPassOthersAreDeniedAndAudited(String engine) {
        try (Engines e = Engines.of(engine); ScriptInvocation inv = node.begin()) {
            assertEquals("value-of-MyApiKey", e.run(inv, "return secretStorage.getSecret('MyApiKey');"));
            assertEquals("value-of-device-B-token", e.run(inv, "return secretStorage.getSecret('device-B-token');"));
            for (String script : List.of("return secretStorage.getSecret('admin-password');",
                    "return '' + secretStorage.ref('admin-password');",
                    "return secretStorage.getSecret('device-*-token');")) {
                ScriptExecutionException ex = assertThrows(ScriptExecutionException.class, () -> e.run(inv, script), script);
                assertFalse(ex.getMessage().contains("value-of-"), ex.getMessage());
                assertFalse(ex.timedOut());
            }
        }
        node.close();
        store.close();
        String denial = audit.stream()
                .filter(r -> r.contains("\"names\":[\"admin-password\"]") && r.contains("\"outcome\":\"PERMISSION_DENIED\""))
                .findFirst().orElseThrow(() -> new AssertionError("no audited denial in " + audit));
        assertTrue(denial.contains("\"role\":\"SERVICE\"") && denial.contains("\"principal\":\"rule-node:" + NODE + "\""), denial);
    }

    @Test
    void theDeniedReadIsAPermissionError() {
        try (ScriptInvocation inv = node.begin()) {
            PermissionDeniedException ex = assertThrows(PermissionDeniedException.class,
                    () -> inv.scriptObject().getSecret("admin-password"));
            assertTrue(ex.getMessage().contains("admin-password"), ex.getMessage());
            assertThrows(PermissionDeniedException.class, () -> inv.scriptObject().ref("admin-password"));
            assertEquals(List.of(), inv.issuedNames());
        }
    }

    @Test
    void anEmptyAllowListAllowsNothingAndABadEntryIsRefused() {
        try (NodeSecrets none = NodeSecrets.open(store, TENANT, "node-none", List.of());
                ScriptInvocation inv = none.begin()) {
            assertThrows(PermissionDeniedException.class, () -> inv.scriptObject().getSecret("MyApiKey"));
        }
        assertThrows(InvalidArgumentException.class, () -> NodeSecrets.open(store, TENANT, "node-bad", List.of("a{b}")));
    }
}
