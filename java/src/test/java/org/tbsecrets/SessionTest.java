package org.tbsecrets;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Sessions: every operation class (READ, WRITE, DELETE, RESOLVE) allowed and denied under the
 * default policy, other tenants, a custom policy, and the lifecycle of sessions and their store.
 */
class SessionTest {
    private static final String T = "tenant-a";
    private static final String OTHER = "tenant-b";
    private static final String VALUE = "session-s3cr3t-value";

    @TempDir Path dir;
    SecretStorage store;

    @BeforeEach
    void open() {
        store = Fixtures.open(dir);
        store.create(T, "key", SecretType.TEXT, VALUE.getBytes(UTF_8), "");
        store.create(OTHER, "key", SecretType.TEXT, "other-value".getBytes(UTF_8), "");
    }

    @AfterEach
    void close() {
        store.close();
    }

    @Test
    void readAllowedForServiceDeniedForCustomerUser() {
        try (SecretSession service = store.session(Principal.service(T));
                SecretSession customer = store.session(Principal.customerUser(T))) {
            assertEquals("key", service.info(T, "key").name());
            assertEquals(1, service.list(T).items().size());
            assertEquals(1, service.history(T, "key").size());
            assertTrue(service.whereUsed(T, "key").isEmpty());
            PermissionDeniedException denied =
                    assertThrows(PermissionDeniedException.class, () -> customer.info(T, "key"));
            assertEquals(ErrorCode.PERMISSION_DENIED, denied.code());
            assertTrue(denied.getMessage().contains("CUSTOMER_USER"), denied.getMessage());
            assertThrows(PermissionDeniedException.class, () -> customer.list(T));
        }
    }

    @Test
    void writeAllowedForTenantAdminDeniedForService() {
        try (SecretSession admin = store.session(Principal.tenantAdmin(T).withId("alice"));
                SecretSession service = store.session(Principal.service(T))) {
            assertEquals(1, admin.create(T, "new", SecretType.TEXT, "v".toCharArray(), "d").version());
            assertEquals(2, admin.updateValue(T, "new", "w".toCharArray()).version());
            assertEquals("e", admin.updateDescription(T, "new", "e").description());
            assertEquals(3, admin.rollback(T, "new", 1).version());
            assertEquals(1, admin.trackReferences(T, "rule-node:1", "{\"a\":\"${secret:new}\"}").size());
            assertEquals(1, admin.untrack(T, "rule-node:1"));
            assertThrows(PermissionDeniedException.class,
                    () -> service.create(T, "nope", SecretType.TEXT, "v".toCharArray(), ""));
            assertThrows(PermissionDeniedException.class, () -> service.updateValue(T, "key", "x".toCharArray()));
            assertThrows(PermissionDeniedException.class, () -> service.trackReferences(T, "s", "{}"));
            assertThrows(NotFoundException.class, () -> store.info(T, "nope"));
            assertEquals(VALUE, store.getSecret(T, "key"), "a denied update changes nothing");
        }
    }

    @Test
    void deleteAllowedForTenantAdminDeniedForService() {
        try (SecretSession admin = store.session(Principal.tenantAdmin(T));
                SecretSession service = store.session(Principal.service(T))) {
            assertThrows(PermissionDeniedException.class, () -> service.delete(T, "key"));
            assertEquals("key", store.info(T, "key").name());
            admin.delete(T, "key");
            assertThrows(NotFoundException.class, () -> store.info(T, "key"));
        }
    }

    @Test
    void resolveAllowedForServiceDeniedForTenantAdmin() {
        try (SecretSession service = store.session(Principal.service(T).withId("rule-engine"));
                SecretSession admin = store.session(Principal.tenantAdmin(T))) {
            assertEquals(VALUE, service.getSecret(T, "key"));
            assertEquals(VALUE, new String(service.getSecretBytes(T, "key"), UTF_8));
            assertEquals("{\"k\":\"" + VALUE + "\"}", service.resolve(T, "{\"k\":\"${secret:key}\"}"));
            assertEquals("k=" + VALUE, service.resolveText(T, "k=${secret:key}"));
            assertEquals(VALUE, service.forTenant(T).getSecret("key"));
            // The hot path (ASCII arguments through the call buffer) and the object path both check.
            assertThrows(PermissionDeniedException.class, () -> admin.getSecret(T, "key"));
            assertThrows(PermissionDeniedException.class, () -> admin.getSecret(T, "ключ"));
            assertThrows(PermissionDeniedException.class, () -> admin.getSecretBytes(T, "key"));
            assertThrows(PermissionDeniedException.class, () -> admin.resolve(T, "{\"k\":\"${secret:key}\"}"));
            assertThrows(PermissionDeniedException.class, () -> admin.forTenant(T).resolveText("${secret:key}"));
        }
    }

    @Test
    void otherTenantsAreDeniedExceptToTheSystemAdministrator() {
        try (SecretSession service = store.session(Principal.service(T));
                SecretSession admin = store.session(Principal.tenantAdmin(T));
                SecretSession sysAdmin = store.session(Principal.sysAdmin())) {
            assertThrows(PermissionDeniedException.class, () -> service.getSecret(OTHER, "key"));
            assertThrows(PermissionDeniedException.class, () -> service.info(OTHER, "key"));
            assertThrows(PermissionDeniedException.class, () -> admin.info(OTHER, "key"));
            assertThrows(PermissionDeniedException.class, () -> admin.delete(OTHER, "key"));
            assertThrows(PermissionDeniedException.class, () -> admin.rotateTenantKey(OTHER));
            assertEquals("key", sysAdmin.info(OTHER, "key").name());
            assertEquals(2, sysAdmin.updateValue(OTHER, "key", "new".toCharArray()).version());
            assertThrows(PermissionDeniedException.class, () -> sysAdmin.getSecret(OTHER, "key"),
                    "the system administrator never reads values");
            assertEquals(Principal.SYSTEM_TENANT, sysAdmin.principal().tenantId());
        }
    }

    @Test
    void storeWideOperationsNeedEveryTenant() {
        try (SecretSession admin = store.session(Principal.tenantAdmin(T));
                SecretSession sysAdmin = store.session(Principal.sysAdmin())) {
            assertThrows(PermissionDeniedException.class, () -> admin.verifyAuditLog());
            assertThrows(PermissionDeniedException.class, () -> admin.rotateMasterKey(Fixtures.newKey()));
            assertTrue(sysAdmin.verifyAuditLog().isIntact());
            assertEquals(1, admin.rotateTenantKey(T).keys());
            assertEquals(VALUE, store.getSecret(T, "key"));
        }
    }

    @Test
    void customPolicy() {
        store.close();
        String policy = "{\"rules\":[{\"role\":\"CUSTOMER_USER\",\"operations\":[\"READ\",\"RESOLVE\"],\"tenants\":\"own\"}]}";
        store = SecretStorage.open(dir.resolve("custom.db"),
                SecretStorageOptions.builder().masterKey(Fixtures.newKey()).policyJson(policy).build());
        store.create(T, "key", SecretType.TEXT, VALUE.getBytes(UTF_8), "");
        try (SecretSession customer = store.session(Principal.customerUser(T));
                SecretSession service = store.session(Principal.service(T));
                SecretSession admin = store.session(Principal.tenantAdmin(T))) {
            assertEquals(VALUE, customer.getSecret(T, "key"));
            assertEquals(1, customer.list(T).items().size());
            assertThrows(PermissionDeniedException.class, () -> customer.getSecret(OTHER, "key"));
            assertThrows(PermissionDeniedException.class, () -> service.getSecret(T, "key"), "not granted");
            assertThrows(PermissionDeniedException.class, () -> admin.info(T, "key"), "not granted");
        }
    }

    @Test
    void invalidPolicyFailsAtOpen() {
        for (String bad : List.of("not json", "{\"rules\":[{\"role\":\"ROOT\",\"operations\":[],\"tenants\":\"own\"}]}")) {
            assertThrows(InvalidArgumentException.class, () -> SecretStorage.open(dir.resolve("bad.db"),
                    SecretStorageOptions.builder().masterKey(Fixtures.newKey()).policyJson(bad).build()));
        }
    }

    @Test
    void invalidPrincipal() {
        assertThrows(NullPointerException.class, () -> Principal.service(null));
        assertThrows(NullPointerException.class, () -> new Principal(T, null, null));
        assertThrows(InvalidArgumentException.class, () -> store.session(Principal.service("")));
    }

    @Test
    void sessionUseAfterCloseThrows() {
        SecretSession session = store.session(Principal.service(T));
        assertSame(store, session.storage());
        session.close();
        session.close(); // idempotent
        assertTrue(session.isClosed());
        assertThrows(IllegalStateException.class, () -> session.getSecret(T, "key"));
        assertThrows(IllegalStateException.class, () -> session.info(T, "key"));
        assertThrows(IllegalStateException.class, () -> session.forTenant(T).getSecret("key"));
        assertEquals(VALUE, store.getSecret(T, "key"), "closing a session leaves the store open");
        assertFalse(store.isClosed());
    }

    @Test
    void closingTheStoreClosesItsSessions() {
        SecretSession session = store.session(Principal.service(T));
        assertEquals(VALUE, session.getSecret(T, "key"));
        store.close();
        assertTrue(session.isClosed());
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> session.getSecret(T, "key"));
        assertTrue(e.getMessage().contains("secret store"), e.getMessage());
        assertThrows(IllegalStateException.class, () -> session.resolve(T, "{}"));
        assertThrows(IllegalStateException.class, () -> store.session(Principal.service(T)));
        session.close();
    }

    @Test
    void closeRacingSessionCallsNeverCrashes() throws Exception {
        List<SecretSession> sessions = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            sessions.add(store.session(Principal.service(T)));
        }
        AtomicInteger refused = new AtomicInteger();
        CountDownLatch running = new CountDownLatch(8);
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            SecretSession session = sessions.get(i % 4);
            boolean closeSession = i == 0;
            Thread t = new Thread(() -> {
                running.countDown();
                for (int n = 0; ; n++) {
                    try {
                        assertEquals(VALUE, session.getSecret(T, "key"));
                        if (closeSession && n == 100) {
                            session.close();
                        }
                    } catch (IllegalStateException closed) {
                        refused.incrementAndGet();
                        return;
                    }
                }
            });
            threads.add(t);
            t.start();
        }
        running.await();
        Thread.sleep(50);
        store.close();
        for (Thread t : threads) {
            t.join(10_000);
            assertFalse(t.isAlive());
        }
        assertEquals(8, refused.get(), "every thread ended with IllegalStateException");
    }
}
