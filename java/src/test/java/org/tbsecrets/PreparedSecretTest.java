package org.tbsecrets;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link PreparedSecret}: the value read, updates and deletes seen, the session's policy applied on
 * every read, reads audited as uses, and every way of closing giving a typed error.
 */
class PreparedSecretTest {
    private static final String T = "tenant-a";
    private static final String OTHER = "tenant-b";

    @TempDir Path dir;
    SecretStorage store;

    @BeforeEach
    void open() {
        store = Fixtures.open(dir);
        store.create(T, "token", SecretType.TEXT, "first-value".getBytes(UTF_8), "");
        store.create(OTHER, "token", SecretType.TEXT, "other-tenant".getBytes(UTF_8), "");
    }

    @AfterEach
    void close() {
        store.close();
    }

    @Test
    void readsTheValueAndSeesUpdatesAndDeletes() {
        try (PreparedSecret handle = store.prepareSecret(T, "token")) {
            assertEquals(T, handle.tenantId());
            assertEquals("token", handle.name());
            assertEquals("first-value", handle.get());
            assertArrayEquals("first-value".getBytes(UTF_8), handle.getBytes());

            store.updateValue(T, "token", "second".getBytes(UTF_8));
            assertEquals("second", handle.get(), "the cached value is invalidated by an update");

            store.delete(T, "token");
            NotFoundException gone = assertThrows(NotFoundException.class, handle::get);
            assertEquals(ErrorCode.NOT_FOUND, gone.code());
            assertThrows(NotFoundException.class, handle::getBytes);

            store.undelete(T, "token");
            assertEquals("second", handle.get(), "an undeleted secret reads again");
            store.destroy(T, "token");
            assertThrows(NotFoundException.class, handle::get);
            store.create(T, "token", SecretType.TEXT, "recreated".getBytes(UTF_8), "");
            assertEquals("recreated", handle.get());
        }
    }

    @Test
    void textFileValuesAreBytesOnly() {
        store.create(T, "cert", SecretType.TEXT_FILE, "-----BEGIN-----".getBytes(UTF_8), "");
        PreparedSecret handle = store.forTenant(T).prepareSecret("cert");
        assertThrows(TypeMismatchException.class, handle::get);
        assertArrayEquals("-----BEGIN-----".getBytes(UTF_8), handle.getBytes());
    }

    @Test
    void nonAsciiNamesTakeTheObjectPath() {
        String name = "clé-é";
        store.create(T, name, SecretType.TEXT, "unicode".getBytes(UTF_8), "");
        PreparedSecret handle = store.prepareSecret(T, name);
        assertEquals("unicode", handle.get());
        assertArrayEquals("unicode".getBytes(UTF_8), handle.getBytes());
    }

    @Test
    void aSessionsHandleIsCheckedOnEveryRead() {
        try (SecretSession service = store.session(Principal.service(T).withId("rule-node:1"));
                SecretSession admin = store.session(Principal.tenantAdmin(T))) {
            assertEquals("first-value", service.prepareSecret(T, "token").get());
            PreparedSecret otherTenant = service.prepareSecret(OTHER, "token");
            assertThrows(PermissionDeniedException.class, otherTenant::get);
            assertThrows(PermissionDeniedException.class, otherTenant::getBytes);
            assertThrows(PermissionDeniedException.class, () -> admin.prepareSecret(T, "token").get());
            assertEquals("first-value", service.forTenant(T).prepareSecret("token").get());
        }
    }

    @Test
    void readsAreAuditedAsUses() throws Exception {
        try (SecretSession service = store.session(Principal.service(T).withId("rule-node:7"))) {
            PreparedSecret handle = service.prepareSecret(T, "token");
            for (int i = 0; i < 3; i++) {
                assertEquals("first-value", handle.get());
            }
            service.flushUsage();
        }
        List<String> uses = Files.readAllLines(store.auditLogPath().orElseThrow(), UTF_8).stream()
                .filter(line -> line.contains("rule-node:7") && line.contains("\"GET\""))
                .toList();
        assertEquals(1, uses.size(), uses::toString);
        assertTrue(uses.get(0).contains("\"count\":3"), uses.get(0));
        assertFalse(uses.get(0).contains("first-value"), "no value in the audit log");
    }

    @Test
    void closingTheHandleTheSessionOrTheStoreGivesATypedError() {
        PreparedSecret handle = store.prepareSecret(T, "token");
        handle.close();
        handle.close(); // idempotent
        assertTrue(handle.isClosed());
        assertThrows(IllegalStateException.class, handle::get);
        assertThrows(IllegalStateException.class, handle::getBytes);

        SecretSession service = store.session(Principal.service(T));
        PreparedSecret fromSession = service.prepareSecret(T, "token");
        assertEquals("first-value", fromSession.get());
        service.close();
        assertTrue(fromSession.isClosed());
        assertThrows(IllegalStateException.class, fromSession::get);

        PreparedSecret fromStore = store.forTenant(T).prepareSecret("token");
        store.close();
        assertThrows(IllegalStateException.class, fromStore::get);
        assertThrows(IllegalStateException.class, fromStore::getBytes);
    }

    @Test
    void nullArgumentsAreRefused() {
        assertThrows(NullPointerException.class, () -> store.prepareSecret(null, "token"));
        assertThrows(NullPointerException.class, () -> store.prepareSecret(T, null));
        assertThrows(NullPointerException.class, () -> store.forTenant(T).prepareSecret(null));
    }
}
