package org.tbsecrets;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Host key providers: a store opened and reopened through a {@link KeyProvider} (AES-256-GCM
 * with javax.crypto, standing in for a KMS), a provider that throws (KEY_UNAVAILABLE with its
 * message, nothing written), another provider's key (WRONG_MASTER_KEY), and rotation raw key →
 * provider → raw key.
 */
class KeyProviderTest {
    private static final String T = "tenant-a";
    private static final String VALUE = "kms-protected-s3cr3t";

    @TempDir Path dir;

    /** A stand-in for a KMS client: AES-256-GCM under a key only this object holds. */
    static final class AesGcmKms implements KeyProvider {
        private final SecretKeySpec key;
        private final SecureRandom random = new SecureRandom();
        volatile boolean down;
        final AtomicInteger calls = new AtomicInteger();
        final Set<Thread> threads = ConcurrentHashMap.newKeySet();
        final List<byte[]> plaintextsSeen = new ArrayList<>();

        AesGcmKms() {
            byte[] raw = new byte[32];
            random.nextBytes(raw);
            key = new SecretKeySpec(raw, "AES");
            Arrays.fill(raw, (byte) 0);
        }

        private void check() {
            calls.incrementAndGet();
            threads.add(Thread.currentThread());
            if (down) {
                throw new IllegalStateException("kms.example is unreachable");
            }
        }

        @Override
        public byte[] wrap(byte[] aad, byte[] plaintext) {
            check();
            synchronized (plaintextsSeen) {
                plaintextsSeen.add(plaintext); // the library's array, to show it is zeroed
            }
            try {
                byte[] nonce = new byte[12];
                random.nextBytes(nonce);
                Cipher cipher = Cipher.getInstance("AES/GCM/NoPadding");
                cipher.init(Cipher.ENCRYPT_MODE, key, new GCMParameterSpec(128, nonce));
                cipher.updateAAD(aad);
                byte[] sealed = cipher.doFinal(plaintext);
                return ByteBuffer.allocate(12 + sealed.length).put(nonce).put(sealed).array();
            } catch (GeneralSecurityException e) {
                throw new IllegalStateException(e);
            }
        }

        @Override
        public byte[] unwrap(byte[] aad, byte[] wrapped) {
            check();
            try {
                Cipher cipher = Cipher.getInstance("AES/GCM/NoPadding");
                cipher.init(Cipher.DECRYPT_MODE, key, new GCMParameterSpec(128, wrapped, 0, 12));
                cipher.updateAAD(aad);
                return cipher.doFinal(wrapped, 12, wrapped.length - 12);
            } catch (javax.crypto.AEADBadTagException e) {
                throw new IntegrityException("not wrapped by this KMS key", null);
            } catch (GeneralSecurityException e) {
                throw new IllegalStateException(e);
            }
        }

        @Override
        public String description() {
            return "test-kms";
        }
    }

    private SecretStorage open(KeyProvider provider) {
        return SecretStorage.open(dir.resolve("store.db"),
                SecretStorageOptions.builder().keyProvider(provider).build());
    }

    @Test
    void opensCreatesAndReopensThroughTheProvider() {
        AesGcmKms kms = new AesGcmKms();
        try (SecretStorage store = open(kms)) {
            store.create(T, "db", SecretType.TEXT, VALUE.getBytes(UTF_8), "");
            assertEquals(VALUE, store.getSecret(T, "db"));
        }
        assertTrue(kms.calls.get() >= 2, "key check and data key wrapped: " + kms.calls);
        synchronized (kms.plaintextsSeen) {
            assertFalse(kms.plaintextsSeen.isEmpty());
            for (byte[] plaintext : kms.plaintextsSeen) {
                assertArrayEquals(new byte[plaintext.length], plaintext, "the library zeroes its copy");
            }
        }
        int before = kms.calls.get();
        try (SecretStorage store = open(kms)) {
            assertEquals(VALUE, store.getSecret(T, "db"));
        }
        assertTrue(kms.calls.get() > before);
        // Another KMS key: the key check does not unwrap.
        assertThrows(WrongMasterKeyException.class, () -> open(new AesGcmKms()));
        assertThrows(WrongMasterKeyException.class, () -> SecretStorage.open(dir.resolve("store.db"),
                SecretStorageOptions.withMasterKey(Fixtures.newKey())));
    }

    @Test
    void aThrowingProviderIsKeyUnavailableWithItsMessageAndChangesNothing() {
        AesGcmKms kms = new AesGcmKms();
        try (SecretStorage store = open(kms)) {
            store.create(T, "db", SecretType.TEXT, VALUE.getBytes(UTF_8), "");
            kms.down = true;
            KeyUnavailableException e = assertThrows(KeyUnavailableException.class,
                    () -> store.create("tenant-b", "db", SecretType.TEXT, VALUE.getBytes(UTF_8), ""));
            assertEquals(ErrorCode.KEY_UNAVAILABLE, e.code());
            assertTrue(e.getMessage().contains("kms.example is unreachable"), e.getMessage());
            assertTrue(e.getMessage().contains("IllegalStateException"), e.getMessage());
            assertTrue(e.getMessage().contains("test-kms"), e.getMessage());
            assertFalse(e.getMessage().contains(VALUE));
            kms.down = false;
            assertThrows(NotFoundException.class, () -> store.getSecret("tenant-b", "db"));
        }
        kms.down = true;
        assertThrows(KeyUnavailableException.class, () -> open(kms));
        kms.down = false;
        KeyProvider returnsNull = new KeyProvider() {
            @Override
            public byte[] wrap(byte[] aad, byte[] plaintext) {
                return null;
            }

            @Override
            public byte[] unwrap(byte[] aad, byte[] wrapped) {
                return null;
            }
        };
        assertThrows(KeyUnavailableException.class, () -> SecretStorage.open(dir.resolve("other.db"),
                SecretStorageOptions.builder().keyProvider(returnsNull).build()));
        assertThrows(InvalidArgumentException.class, () -> SecretStorage.open(dir.resolve("both.db"),
                SecretStorageOptions.builder().masterKey(Fixtures.newKey()).keyProvider(kms).build()));
    }

    @Test
    void rotatesFromARawKeyToTheProviderAndBack() {
        byte[] raw = Fixtures.newKey();
        AesGcmKms kms = new AesGcmKms();
        Path path = dir.resolve("store.db");
        try (SecretStorage store = SecretStorage.open(path, SecretStorageOptions.withMasterKey(raw))) {
            store.create(T, "db", SecretType.TEXT, VALUE.getBytes(UTF_8), "");
            kms.down = true;
            assertThrows(KeyUnavailableException.class, () -> store.rotateKeyProvider(kms));
            kms.down = false;
            assertEquals(1, store.rotateKeyProvider(kms).keys());
            assertEquals(VALUE, store.getSecret(T, "db"));
            assertThrows(NullPointerException.class, () -> store.rotateKeyProvider(null));
        }
        assertThrows(WrongMasterKeyException.class,
                () -> SecretStorage.open(path, SecretStorageOptions.withMasterKey(raw)));
        byte[] newRaw = Fixtures.newKey();
        try (SecretStorage store = open(kms)) {
            assertEquals(VALUE, store.getSecret(T, "db"));
            assertEquals(1, store.rotateMasterKey(newRaw).keys());
        }
        assertThrows(WrongMasterKeyException.class, () -> open(kms));
        try (SecretStorage store = SecretStorage.open(path, SecretStorageOptions.withMasterKey(newRaw))) {
            assertEquals(VALUE, store.getSecret(T, "db"));
        }
    }

    @Test
    void calledOnTheThreadsUsingTheStore() throws InterruptedException {
        AesGcmKms kms = new AesGcmKms();
        try (SecretStorage store = open(kms)) {
            List<Thread> workers = new ArrayList<>();
            List<Throwable> failures = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                String tenant = "tenant-" + i;
                Thread worker = new Thread(() -> {
                    store.create(tenant, "db", SecretType.TEXT, (VALUE + tenant).getBytes(UTF_8), "");
                    assertEquals(VALUE + tenant, store.getSecret(tenant, "db"));
                });
                worker.setUncaughtExceptionHandler((t, e) -> {
                    synchronized (failures) {
                        failures.add(e);
                    }
                });
                workers.add(worker);
                worker.start();
            }
            for (Thread worker : workers) {
                worker.join();
            }
            assertEquals(List.of(), failures);
            for (Thread worker : workers) {
                assertTrue(kms.threads.contains(worker), "each new tenant's key is wrapped on its thread");
            }
        }
    }
}
