package org.tbsecrets;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Per-message names through Java: {@code resolve(tenantId, json, metadata)} fills
 * {@code {{metadata.KEY}}} parts of placeholder names, only in allow-listed sessions and only to
 * names on the list; hostile metadata values are refused; references keep the pattern.
 */
class DynamicNamesTest {
    private static final String T = "tenant-a";
    private static final String CONFIG =
            "{\"headers\":{\"Authorization\":\"Bearer ${secret:device-{{metadata.deviceName}}-token;type:TEXT}\"},"
                    + "\"url\":\"https://x/${deviceName}\"}";
    private static final String PATTERN = "device-{{metadata.deviceName}}-token";

    @TempDir Path dir;
    SecretStorage store;
    final List<String> audit = new CopyOnWriteArrayList<>();

    @BeforeEach
    void open() {
        store = SecretStorage.open(dir.resolve("store.db"),
                SecretStorageOptions.builder().masterKey(Fixtures.newKey()).auditListener(audit::add).build());
        store.create(T, "device-sensor-7-token", SecretType.TEXT, "dyn-s3cr3t-7".getBytes(UTF_8), "");
        store.create(T, "db-password", SecretType.TEXT, "dyn-s3cr3t-db".getBytes(UTF_8), "");
    }

    @AfterEach
    void close() {
        store.close();
    }

    private SecretSession node() {
        return store.session(Principal.service(T).withId("node-dyn"), List.of("device-*-token"));
    }

    @Test
    void fillsTheNameFromMetadata() {
        try (SecretSession node = node()) {
            String resolved = node.resolve(T, CONFIG, Map.of("deviceName", "sensor-7", "other", "../../x;*"));
            assertEquals("{\"headers\":{\"Authorization\":\"Bearer dyn-s3cr3t-7\"},\"url\":\"https://x/${deviceName}\"}",
                    resolved);
            assertEquals(resolved, node.forTenant(T).resolve(CONFIG, Map.of("deviceName", "sensor-7")));
            String plain = "{\"a\":\"${deviceName}\"}";
            assertSame(plain, node.resolve(T, plain, Map.of()), "nothing to replace: the input itself");
        }
    }

    @Test
    void hostileMetadataValuesAreRefused() {
        try (SecretSession node = node()) {
            for (String hostile : List.of("../x", "..", "*", "sensor-?", "a;b", "}", "{", "a\nb", "a/b", "", " a",
                    "x".repeat(300), "sensor-7\u0000", "é")) {
                UnresolvedPlaceholderException e = assertThrows(UnresolvedPlaceholderException.class,
                        () -> node.resolve(T, CONFIG, Map.of("deviceName", hostile)), hostile);
                assertEquals(1, e.problems().size());
                assertEquals(PATTERN, e.problems().get(0).name());
                assertEquals(ErrorCode.INVALID_ARGUMENT, e.problems().get(0).code(), e.getMessage());
                assertFalse(e.getMessage().contains("dyn-s3cr3t"));
            }
            UnresolvedPlaceholderException missing = assertThrows(UnresolvedPlaceholderException.class,
                    () -> node.resolve(T, CONFIG, Map.of("devicename", "sensor-7")));
            assertTrue(missing.getMessage().contains("{{metadata.deviceName}}"), missing.getMessage());
        }
    }

    @Test
    void needsAnAllowListAndTheFilledNameMustBeOnIt() {
        Map<String, String> metadata = Map.of("deviceName", "sensor-7", "name", "db-password");
        try (SecretSession unrestricted = store.session(Principal.service(T));
                SecretSession node = node()) {
            UnresolvedPlaceholderException e = assertThrows(UnresolvedPlaceholderException.class,
                    () -> unrestricted.resolve(T, CONFIG, metadata));
            assertEquals(ErrorCode.PERMISSION_DENIED, e.problems().get(0).code());
            assertTrue(e.getMessage().contains("allow-list"), e.getMessage());
            assertThrows(UnresolvedPlaceholderException.class, () -> store.resolve(T, CONFIG, metadata));
            UnresolvedPlaceholderException outside = assertThrows(UnresolvedPlaceholderException.class,
                    () -> node.resolve(T, "{\"p\":\"${secret:{{metadata.name}}}\"}", metadata));
            assertEquals(ErrorCode.PERMISSION_DENIED, outside.problems().get(0).code());
            assertFalse(outside.getMessage().contains("dyn-s3cr3t"));
        }
        store.flushUsage();
        assertTrue(audit.stream().anyMatch(l -> l.contains("\"RESOLVE\"") && l.contains("\"db-password\"")
                && l.contains("\"PERMISSION_DENIED\"") && l.contains("\"node-dyn\"")), audit::toString);
    }

    @Test
    void nullMetadataIsRefused() {
        try (SecretSession node = node()) {
            Map<String, String> withNull = new HashMap<>();
            withNull.put("deviceName", null);
            assertThrows(NullPointerException.class, () -> node.resolve(T, CONFIG, withNull));
            assertThrows(NullPointerException.class, () -> node.resolve(T, CONFIG, null));
        }
    }

    @Test
    void referencesKeepThePatternAndWhereUsedMatchesIt() {
        List<SecretRef> refs = store.references(CONFIG);
        assertEquals(PATTERN, refs.get(0).name());
        store.trackReferences(T, "rule-node-1", CONFIG);
        List<SecretUsage> used = store.whereUsed(T, "device-sensor-7-token");
        assertEquals(1, used.size());
        assertEquals("rule-node-1", used.get(0).sourceId());
        assertTrue(store.whereUsed(T, "db-password").isEmpty());
    }
}
