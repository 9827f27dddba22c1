package org.tbsecrets;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Key providers by spec: a store opened on a key command ({@code keyProvider}), the data-key
 * cache ({@code keyCacheTtl}, {@code forgetKeys}), {@code rotateKeyProvider} raw → command.
 */
class KeyProviderSpecTest {
    private static final String T = "tenant-a";

    @TempDir Path dir;
    private String spec;
    private String refusing;

    /** A toy key command that "wraps" by echoing its input line, counting its calls. */
    @BeforeEach
    void writeCommands() throws Exception {
        Path echo = dir.resolve("echo-kms");
        Files.writeString(echo, "#!/bin/sh\necho x >> '" + dir.resolve("calls") + "'\nhead -n 1\n");
        Files.setPosixFilePermissions(echo, PosixFilePermissions.fromString("rwx------"));
        Path refuse = dir.resolve("refusing-kms");
        Files.writeString(refuse, "#!/bin/sh\necho 'kms: denied' >&2\nexit 1\n");
        Files.setPosixFilePermissions(refuse, PosixFilePermissions.fromString("rwx------"));
        spec = "command:" + echo;
        refusing = "command:" + refuse;
    }

    private long calls() throws Exception {
        Path calls = dir.resolve("calls");
        return Files.exists(calls) ? Files.readAllLines(calls).size() : 0;
    }

    private SecretStorage open(String path, String provider) {
        return SecretStorage.open(dir.resolve(path), SecretStorageOptions.builder()
                .keyProvider(provider).keyCacheTtl(Duration.ofHours(1)).auditEnabled(false).build());
    }

    @Test
    void aStoreOnAKeyCommandOpensReopensAndForgetsItsKeys() throws Exception {
        try (SecretStorage store = open("kp.db", spec)) {
            store.create(T, "api", SecretType.TEXT, "s3cr3t".getBytes(UTF_8), "");
        }
        try (SecretStorage store = open("kp.db", spec)) {
            assertEquals("s3cr3t", store.getSecret(T, "api"));
            long before = calls();
            assertEquals("s3cr3t", store.getSecret(T, "api"));
            assertEquals(before, calls(), "the unwrapped key is cached");
            store.forgetKeys();
            assertEquals("s3cr3t", store.getSecret(T, "api"));
            assertTrue(calls() > before, "asked the program again");
        }
        KeyUnavailableException down = assertThrows(KeyUnavailableException.class, () -> open("kp.db", refusing));
        assertTrue(down.getMessage().contains("exit status 1): kms: denied"), down.getMessage());
        InvalidArgumentException bad = assertThrows(InvalidArgumentException.class, () -> open("kp.db", "kms:x"));
        assertTrue(bad.getMessage().contains("unknown key provider 'kms'"), bad.getMessage());
        assertThrows(InvalidArgumentException.class, () -> SecretStorage.open(dir.resolve("kp.db"),
                SecretStorageOptions.builder().masterKey(Fixtures.newKey()).keyProvider(spec).build()));
        assertThrows(InvalidArgumentException.class,
                () -> SecretStorageOptions.builder().keyCacheTtl(Duration.ZERO));
    }

    @Test
    void rotateKeyProviderMovesARawStoreToAKeyCommand() {
        byte[] key = Fixtures.newKey();
        Path path = dir.resolve("raw.db");
        try (SecretStorage store = SecretStorage.open(path,
                SecretStorageOptions.builder().masterKey(key).auditEnabled(false).build())) {
            store.create(T, "api", SecretType.TEXT, "raw".getBytes(UTF_8), "");
            assertThrows(InvalidArgumentException.class, () -> store.rotateKeyProvider("command:"));
            RotationReport report = store.rotateKeyProvider(spec);
            assertEquals(1, report.keys());
            assertEquals(2, report.keyId());
        }
        assertThrows(WrongMasterKeyException.class, () -> SecretStorage.open(path,
                SecretStorageOptions.builder().masterKey(key).auditEnabled(false).build()));
        try (SecretStorage store = open("raw.db", spec)) {
            assertEquals("raw", store.getSecret(T, "api"));
            try (SecretSession session = store.session(Principal.tenantAdmin(T))) {
                assertThrows(PermissionDeniedException.class, () -> session.rotateKeyProvider(refusing));
            }
        }
    }
}
