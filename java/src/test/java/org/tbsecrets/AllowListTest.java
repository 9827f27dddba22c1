package org.tbsecrets;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link SecretStorage#session(Principal, List)}: sessions restricted to an allow-list of exact
 * names and glob patterns, their audited denials, and what they may not enumerate.
 */
class AllowListTest {
    private static final String T = "tenant-a";
    private static final String VALUE = "allow-s3cr3t-VALUE";

    @TempDir Path dir;
    SecretStorage store;
    final List<String> audit = new CopyOnWriteArrayList<>();

    @BeforeEach
    void open() {
        store = SecretStorage.open(dir.resolve("store.db"),
                SecretStorageOptions.builder().masterKey(Fixtures.newKey()).auditListener(audit::add).build());
        for (String name : List.of("MyApiKey", "device-a-token", "device-b-token", "db-password")) {
            store.create(T, name, SecretType.TEXT, (VALUE + "-" + name).getBytes(UTF_8), "");
        }
    }

    @AfterEach
    void close() {
        store.close();
    }

    @Test
    void exactNamesAndPatternsAllowedEverythingElseDenied() {
        try (SecretSession node = store.session(Principal.service(T).withId("node-1"),
                List.of("MyApiKey", "device-?-token"))) {
            PermissionDeniedException denied =
                    assertThrows(PermissionDeniedException.class, () -> node.getSecret(T, "db-password"));
            assertEquals(ErrorCode.PERMISSION_DENIED, denied.code());
            assertTrue(denied.getMessage().contains("'db-password'"), denied.getMessage());
            assertEquals(VALUE + "-MyApiKey", node.getSecret(T, "MyApiKey"));
            assertEquals(VALUE + "-device-a-token", node.getSecret(T, "device-a-token"));
            assertThrows(PermissionDeniedException.class, () -> node.getSecret(T, "MyApiKey2"));
            assertThrows(PermissionDeniedException.class, () -> node.getSecret(T, "device-ab-token"));
            assertThrows(PermissionDeniedException.class, () -> node.history(T, "db-password"));
            assertThrows(PermissionDeniedException.class, () -> node.whereUsed(T, "db-password"));
            assertEquals(1, node.history(T, "MyApiKey").size());
            assertEquals(Optional.of(List.of("MyApiKey", "device-?-token")), node.allowedNames());
        }
        store.flushUsage();
        assertTrue(audit.stream().anyMatch(l -> l.contains("\"GET\"") && l.contains("\"db-password\"")
                && l.contains("\"PERMISSION_DENIED\"") && l.contains("\"node-1\"")), audit::toString);
        assertTrue(audit.stream().anyMatch(l -> l.contains("\"READ\"") && l.contains("\"db-password\"")
                && l.contains("\"PERMISSION_DENIED\"")), audit::toString);
        for (String line : audit) {
            assertFalse(line.contains(VALUE), "a record holds a value: " + line);
        }
    }

    @Test
    void resolveNamesEveryNameOutsideTheListAndAuditsTheDenial() {
        try (SecretSession node = store.session(Principal.service(T).withId("node-2"), List.of("device-*"))) {
            assertEquals("{\"a\":\"" + VALUE + "-device-b-token\"}",
                    node.resolve(T, "{\"a\":\"${secret:device-b-token}\"}"));
            UnresolvedPlaceholderException e = assertThrows(UnresolvedPlaceholderException.class,
                    () -> node.resolve(T, "{\"a\":\"${secret:device-a-token}\",\"b\":\"${secret:MyApiKey}\","
                            + "\"c\":\"${secret:db-password}\"}"));
            List<String> names = new ArrayList<>();
            for (PlaceholderProblem p : e.problems()) {
                names.add(p.name());
            }
            Collections.sort(names);
            assertEquals(List.of("MyApiKey", "db-password"), names);
            assertFalse(e.getMessage().contains(VALUE), e.getMessage());
        }
        assertTrue(audit.stream().anyMatch(l -> l.contains("\"RESOLVE\"") && l.contains("\"MyApiKey\"")
                && l.contains("\"PERMISSION_DENIED\"") && l.contains("\"node-2\"")), audit::toString);
    }

    @Test
    void emptyListAllowsNothingAndNullIsUnrestricted() {
        try (SecretSession none = store.session(Principal.service(T), List.of());
                SecretSession all = store.session(Principal.service(T), null)) {
            assertThrows(PermissionDeniedException.class, () -> none.getSecret(T, "MyApiKey"));
            assertEquals(Optional.of(List.of()), none.allowedNames());
            assertEquals(VALUE + "-db-password", all.getSecret(T, "db-password"));
            assertEquals(4, all.list(T).items().size());
            assertEquals(Optional.empty(), all.allowedNames());
        }
    }

    @Test
    void restrictedSessionsCannotEnumerate() {
        try (SecretSession node = store.session(Principal.service(T), List.of("*"))) {
            assertEquals(VALUE + "-MyApiKey", node.getSecret(T, "MyApiKey"), "'*' allows every name");
            assertThrows(PermissionDeniedException.class, () -> node.list(T));
            assertThrows(PermissionDeniedException.class, () -> node.unused(T, Duration.ofDays(1)));
            assertThrows(PermissionDeniedException.class, () -> node.stale(T, Duration.ofDays(1)));
            assertThrows(PermissionDeniedException.class, node::verifyAuditLog);
        }
        try (SecretSession admin = store.session(Principal.tenantAdmin(T), List.of("device-*"))) {
            admin.trackReferences(T, "node-x", "${secret:device-a-token}");
            PermissionDeniedException denied = assertThrows(PermissionDeniedException.class,
                    () -> admin.trackReferences(T, "node-y", "${secret:device-a-token} ${secret:MyApiKey}"));
            assertTrue(denied.getMessage().contains("'MyApiKey'"), denied.getMessage());
            assertThrows(PermissionDeniedException.class, () -> admin.untrack(T, "node-x"));
            assertThrows(PermissionDeniedException.class, () -> admin.delete(T, "MyApiKey"));
            assertThrows(PermissionDeniedException.class,
                    () -> admin.create(T, "other", SecretType.TEXT, "v".getBytes(UTF_8), ""));
            admin.create(T, "device-c-token", SecretType.TEXT, "v".getBytes(UTF_8), "");
        }
        assertTrue(store.whereUsed(T, "MyApiKey").isEmpty(), "the denied tracking recorded nothing");
    }

    @Test
    void invalidEntriesAreRefused() {
        for (List<String> bad : List.of(List.of(""), List.of("a;b"), List.of("${secret:x}"), List.of("a\nb"),
                List.of("x".repeat(256)), Collections.nCopies(1025, "a"))) {
            InvalidArgumentException e = assertThrows(InvalidArgumentException.class,
                    () -> store.session(Principal.service(T), bad).close(), bad::toString);
            assertEquals(ErrorCode.INVALID_ARGUMENT, e.code());
        }
        assertThrows(NullPointerException.class, () -> store.session(Principal.service(T), Arrays.asList("a", null)));
        assertThrows(NullPointerException.class, () -> store.session(null, List.of("a")));
    }

    @Test
    void theListIsCopied() throws Exception {
        List<String> mutable = new ArrayList<>(List.of("MyApiKey"));
        try (SecretSession node = store.session(Principal.service(T), mutable)) {
            mutable.add("db-password");
            assertThrows(PermissionDeniedException.class, () -> node.getSecret(T, "db-password"));
            assertEquals(Optional.of(List.of("MyApiKey")), node.allowedNames());
        }
        assertTrue(Files.exists(dir.resolve("store.db")));
    }
}
