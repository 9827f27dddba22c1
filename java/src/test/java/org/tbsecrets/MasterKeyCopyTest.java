package org.tbsecrets;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.api.function.Executable;

/**
 * Issue 19, item 1: key material is copied when it is handed over (a caller that wipes its
 * array right away keeps the store under the real key), the copies are wiped after use, and an
 * all-zero key is refused before it reaches native code.
 */
class MasterKeyCopyTest {
    private static final String T = "tenant-a";

    @TempDir Path dir;

    private static void assertInvalidArgument(Executable call) {
        InvalidArgumentException e = assertThrows(InvalidArgumentException.class, call);
        assertEquals(ErrorCode.INVALID_ARGUMENT, e.code());
    }

    /** Creates a store with a key the caller wipes between build() and open(), then reopens it. */
    private void assertWipedAfterBuildStillOpensUnderTheRealKey(boolean viaBuilder) {
        byte[] key = Fixtures.newKey();
        byte[] real = key.clone();
        SecretStorageOptions options = viaBuilder
                ? SecretStorageOptions.builder().masterKey(key).build()
                : SecretStorageOptions.withMasterKey(key);
        Arrays.fill(key, (byte) 0); // the right habit: wipe key material once handed over
        Path file = dir.resolve(viaBuilder ? "builder.db" : "with.db");
        try (SecretStorage store = SecretStorage.open(file, options)) {
            store.create(T, "k", SecretType.TEXT, "v".getBytes(UTF_8), "");
        }
        try (SecretStorage store = SecretStorage.open(file, SecretStorageOptions.withMasterKey(real))) {
            assertEquals("v", store.getSecret(T, "k"), "the store was created under the real key");
        }
        SecretStorageOptions other = SecretStorageOptions.withMasterKey(Fixtures.newKey());
        assertThrows(WrongMasterKeyException.class, () -> SecretStorage.open(file, other).close());
    }

    @Test
    void builderCopiesTheKeySoWipingTheCallersArrayChangesNothing() {
        assertWipedAfterBuildStillOpensUnderTheRealKey(true);
    }

    @Test
    void withMasterKeyCopiesTheKeySoWipingTheCallersArrayChangesNothing() {
        assertWipedAfterBuildStillOpensUnderTheRealKey(false);
    }

    @Test
    void builderKeepsItsOwnCopyAcrossBuilds() {
        byte[] key = Fixtures.newKey();
        byte[] real = key.clone();
        SecretStorageOptions.Builder builder = SecretStorageOptions.builder().masterKey(key);
        Arrays.fill(key, (byte) 0);
        SecretStorageOptions first = builder.build();
        SecretStorageOptions second = builder.maxVersions(3).build();
        assertArrayEquals(real, first.masterKey());
        assertArrayEquals(real, second.masterKey());
    }

    @Test
    void accessorHandsOutACopyThatCannotChangeTheOptions() {
        byte[] key = Fixtures.newKey();
        SecretStorageOptions options = SecretStorageOptions.withMasterKey(key);
        byte[] handedOut = options.masterKey();
        assertNotSame(key, handedOut);
        assertNotSame(handedOut, options.masterKey());
        Arrays.fill(handedOut, (byte) 0);
        assertArrayEquals(key, options.masterKey(), "wiping the copy leaves the options' key intact");
    }

    @Test
    void allZeroKeyIsRefusedByTheBuilderAndWithMasterKey() {
        assertInvalidArgument(() -> SecretStorageOptions.builder().masterKey(new byte[32]));
        assertInvalidArgument(() -> SecretStorageOptions.withMasterKey(new byte[32]));
        InvalidArgumentException e = assertThrows(InvalidArgumentException.class,
                () -> SecretStorageOptions.builder().masterKey(new byte[32]));
        assertTrue(e.getMessage().contains("all zero"), e.getMessage());
        assertInvalidArgument(() -> SecretStorageOptions.builder().masterKey(new byte[31]));
        assertThrows(NullPointerException.class, () -> SecretStorageOptions.builder().masterKey(null));
    }

    @Test
    void rotationCopiesTheKeyRefusesAllZeroAndLeavesTheCallersArrayAlone() {
        byte[] oldKey = Fixtures.newKey();
        Path file = dir.resolve("rotate.db");
        byte[] newKey = Fixtures.newKey();
        byte[] real = newKey.clone();
        try (SecretStorage store = SecretStorage.open(file, SecretStorageOptions.withMasterKey(oldKey))) {
            store.create(T, "k", SecretType.TEXT, "v".getBytes(UTF_8), "");
            assertInvalidArgument(() -> store.rotateMasterKey(new byte[32]));
            assertInvalidArgument(() -> store.rotateMasterKey(new byte[16]));
            store.rotateMasterKey(newKey);
            assertArrayEquals(real, newKey, "the caller's array is not modified");
            Arrays.fill(newKey, (byte) 0);
            assertEquals("v", store.getSecret(T, "k"));
        }
        try (SecretStorage store = SecretStorage.open(file, SecretStorageOptions.withMasterKey(real))) {
            assertEquals("v", store.getSecret(T, "k"), "rotated to the real new key");
        }
        assertThrows(WrongMasterKeyException.class,
                () -> SecretStorage.open(file, SecretStorageOptions.withMasterKey(oldKey)).close(),
                "the refused all-zero rotation changed nothing, the real one did");
    }

    @Test
    void sessionRotationRefusesAnAllZeroKeyBeforeThePolicyCheck() {
        try (SecretStorage store = Fixtures.open(dir);
                SecretSession sysAdmin = store.session(Principal.sysAdmin())) {
            assertInvalidArgument(() -> sysAdmin.rotateMasterKey(new byte[32]));
        }
    }

    @Test
    void wipedOptionsOpenNothingButLeaveOpenStoresWorking() {
        byte[] key = Fixtures.newKey();
        SecretStorageOptions options = SecretStorageOptions.withMasterKey(key);
        Path file = dir.resolve("wiped.db");
        try (SecretStorage store = SecretStorage.open(file, options)) {
            options.wipeMasterKey();
            options.wipeMasterKey();
            assertEquals(null, options.masterKey(), "nothing left to hand out");
            store.create(T, "k", SecretType.TEXT, "v".getBytes(UTF_8), "");
            assertInvalidArgument(() -> SecretStorage.open(file, options));
        }
        try (SecretStorage store = SecretStorage.open(file, SecretStorageOptions.withMasterKey(key))) {
            assertEquals("v", store.getSecret(T, "k"));
        }
    }
}
