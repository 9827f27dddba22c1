package org.tbsecrets;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 19, item 2: an audit listener that closes the store (or a session) from inside the call
 * that invoked it never deadlocks: the close takes effect once that call returns. (The timeout
 * only turns a regression, which blocks forever in an uninterruptible lock, into a failure: it
 * runs each test in its own thread so that the blocked thread can be abandoned. Nothing here
 * depends on timing; with the fix every test finishes in well under a second.)
 */
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class ListenerCloseTest {
    private static final String T = "tenant-a";

    @TempDir Path dir;

    /** A listener that runs an action once, on the first record it receives. */
    private static final class OnFirstRecord implements AuditListener {
        final AtomicReference<Runnable> action = new AtomicReference<>();

        @Override
        public void onRecord(String jsonLine) {
            Runnable run = action.getAndSet(null);
            if (run != null) {
                run.run();
            }
        }
    }

    private SecretStorage open(Path file, byte[] key, AuditListener listener) {
        return SecretStorage.open(file, SecretStorageOptions.builder().masterKey(key).auditListener(listener).build());
    }

    @Test
    void closingTheStoreInsideCreateTakesEffectWhenCreateReturns() {
        byte[] key = Fixtures.newKey();
        Path file = dir.resolve("store.db");
        OnFirstRecord listener = new OnFirstRecord();
        SecretStorage store = open(file, key, listener);
        AtomicReference<Boolean> closedInside = new AtomicReference<>();
        listener.action.set(() -> {
            store.close();
            closedInside.set(store.isClosed());
        });
        SecretInfo info = store.create(T, "k", SecretType.TEXT, "v".getBytes(UTF_8), "");
        assertEquals(1, info.version(), "the call that invoked the listener completes normally");
        assertEquals(Boolean.TRUE, closedInside.get(), "the store counts as closed at once");
        assertTrue(store.isClosed());
        assertThrows(IllegalStateException.class, () -> store.getSecret(T, "k"));
        store.close(); // idempotent
        try (SecretStorage reopened = open(file, key, null)) {
            assertEquals("v", reopened.getSecret(T, "k"), "the write went through");
            assertTrue(reopened.verifyAuditLog().isIntact(), "the closed store's audit log is intact");
        }
    }

    @Test
    void closingTheStoreInsideAFailingCallKeepsTheCallsOwnException() {
        OnFirstRecord listener = new OnFirstRecord();
        SecretStorage store = open(dir.resolve("store.db"), Fixtures.newKey(), listener);
        SecretSession service = store.session(Principal.service(T));
        listener.action.set(store::close);
        // A service may not write: the denied attempt is audited, and the listener closes the
        // store while the call is still running.
        assertThrows(PermissionDeniedException.class,
                () -> service.create(T, "k", SecretType.TEXT, "v".getBytes(UTF_8), ""));
        assertTrue(store.isClosed());
        assertTrue(service.isClosed(), "closing the store closed its session");
        assertThrows(IllegalStateException.class, () -> service.list(T));
    }

    @Test
    void closingTheSessionInsideItsOwnCallLeavesTheStoreOpen() {
        OnFirstRecord listener = new OnFirstRecord();
        try (SecretStorage store = open(dir.resolve("store.db"), Fixtures.newKey(), listener)) {
            SecretSession admin = store.session(Principal.tenantAdmin(T));
            listener.action.set(admin::close);
            admin.create(T, "k", SecretType.TEXT, "v".getBytes(UTF_8), "");
            assertTrue(admin.isClosed());
            assertThrows(IllegalStateException.class, () -> admin.info(T, "k"));
            assertFalse(store.isClosed());
            assertEquals("v", store.getSecret(T, "k"));
        }
    }

    @Test
    void closingTheStoreInsideASessionCallClosesBoth() {
        OnFirstRecord listener = new OnFirstRecord();
        SecretStorage store = open(dir.resolve("store.db"), Fixtures.newKey(), listener);
        SecretSession admin = store.session(Principal.tenantAdmin(T));
        listener.action.set(() -> {
            admin.close();
            store.close();
        });
        admin.create(T, "k", SecretType.TEXT, "v".getBytes(UTF_8), "");
        assertTrue(admin.isClosed());
        assertTrue(store.isClosed());
        assertThrows(IllegalStateException.class, () -> store.info(T, "k"));
    }

    @Test
    void aCallFromTheListenerAfterItClosedTheStoreIsRefusedAndIgnored() {
        OnFirstRecord listener = new OnFirstRecord();
        SecretStorage store = open(dir.resolve("store.db"), Fixtures.newKey(), listener);
        AtomicReference<RuntimeException> inside = new AtomicReference<>();
        listener.action.set(() -> {
            store.close();
            try {
                store.list(T);
            } catch (RuntimeException e) {
                inside.set(e);
            }
        });
        store.create(T, "k", SecretType.TEXT, "v".getBytes(UTF_8), "");
        assertTrue(inside.get() instanceof IllegalStateException, String.valueOf(inside.get()));
        assertTrue(store.isClosed());
    }
}
