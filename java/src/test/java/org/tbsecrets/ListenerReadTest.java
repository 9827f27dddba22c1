package org.tbsecrets;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An audit listener runs on the thread of the call that wrote the records, inside that native
 * call; one that reads a secret must not take the hot path's call buffer, which holds the outer
 * call's tenant id and name (the outer call still reads them after the listener returns, e.g. to
 * name the secret in its error).
 */
class ListenerReadTest {
    private static final String T = "tenant-a";

    @TempDir Path dir;

    @Test
    void aListenerReadingASecretLeavesTheOuterReadsArgumentsAlone() {
        AtomicReference<SecretStorage> storeRef = new AtomicReference<>();
        AtomicBoolean insideOuterRead = new AtomicBoolean();
        List<String> readByListener = new CopyOnWriteArrayList<>();
        AuditListener listener = line -> {
            if (insideOuterRead.get()) {
                readByListener.add(storeRef.get().getSecret(T, "inner-token"));
            }
        };
        try (SecretStorage store = SecretStorage.open(dir.resolve("store.db"),
                SecretStorageOptions.builder().masterKey(Fixtures.newKey()).auditListener(listener).build())) {
            storeRef.set(store);
            store.create(T, "inner-token", SecretType.TEXT, "inner-value".getBytes(UTF_8), "");
            store.create(T, "ca-cert", SecretType.TEXT_FILE, "-----BEGIN CERTIFICATE-----".getBytes(UTF_8), "");
            PreparedSecret prepared = store.prepareSecret(T, "ca-cert");
            // Value uses are batched and handed to the listener at most once a second, by the read
            // that finds them due: read until one of these reads was that one.
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            int reads = 0;
            while (readByListener.isEmpty()) {
                assertTrue(System.nanoTime() < deadline, "no batch of uses delivered in 30 s");
                boolean viaPrepared = reads++ % 2 == 1;
                insideOuterRead.set(true);
                TypeMismatchException e = assertThrows(TypeMismatchException.class,
                        () -> {
                            if (viaPrepared) {
                                prepared.get();
                            } else {
                                store.getSecret(T, "ca-cert");
                            }
                        });
                insideOuterRead.set(false);
                assertTrue(e.getMessage().contains("secret 'ca-cert' is TEXT_FILE"), e.getMessage());
            }
            assertEquals(List.of("inner-value"), readByListener, "the listener's own read is right too");
            assertEquals("inner-value", store.getSecret(T, "inner-token"), "the call buffer still works");
        }
    }
}
