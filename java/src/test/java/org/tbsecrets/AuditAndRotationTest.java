package org.tbsecrets;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The audit log through Java (listener, verification, tampering, settings), key rotation and
 * the unused / stale reports.
 */
class AuditAndRotationTest {
    private static final String T = "tenant-a";
    private static final String VALUE = "audit-s3cr3t-VALUE-42";
    private static final String FILE_VALUE = "-----BEGIN KEY-----\naudit-file-s3cr3t\n-----END KEY-----\n";

    @TempDir Path dir;

    private SecretStorage open(byte[] key, AuditListener listener) {
        return SecretStorage.open(dir.resolve("store.db"),
                SecretStorageOptions.builder().masterKey(key).auditListener(listener).build());
    }

    @Test
    void listenerReceivesRecordsIncludingDeniedOnesAndNeverAValue() {
        List<String> lines = new CopyOnWriteArrayList<>();
        try (SecretStorage store = open(Fixtures.newKey(), lines::add)) {
            store.create(T, "key", SecretType.TEXT, VALUE.getBytes(UTF_8), "");
            store.create(T, "pem", SecretType.TEXT_FILE, FILE_VALUE.getBytes(UTF_8), "");
            try (SecretSession service = store.session(Principal.service(T).withId("rule-engine"));
                    SecretSession admin = store.session(Principal.tenantAdmin(T).withId("alice"))) {
                assertEquals(VALUE, service.getSecret(T, "key"));
                service.resolve(T, "{\"a\":\"${secret:pem}\"}");
                assertThrows(PermissionDeniedException.class, () -> service.delete(T, "key"));
                assertThrows(PermissionDeniedException.class, () -> admin.getSecret(T, "key"));
                admin.updateValue(T, "key", (VALUE + "-2").toCharArray());
            }
            store.flushUsage(); // batched value uses
            assertTrue(lines.stream().anyMatch(l -> l.contains("\"CREATE\"") && l.contains("\"HOST\"")), lines::toString);
            assertTrue(lines.stream().anyMatch(l -> l.contains("\"UPDATE\"") && l.contains("\"alice\"")), lines::toString);
            assertTrue(lines.stream().anyMatch(l -> l.contains("\"GET\"") && l.contains("\"rule-engine\"")
                    && l.contains("\"OK\"")), lines::toString);
            assertTrue(lines.stream().anyMatch(l -> l.contains("\"RESOLVE\"") && l.contains("\"pem\"")), lines::toString);
            assertTrue(lines.stream().anyMatch(l -> l.contains("\"DELETE\"") && l.contains("\"PERMISSION_DENIED\"")
                    && l.contains("\"SERVICE\"")), lines::toString);
            assertTrue(lines.stream().anyMatch(l -> l.contains("\"GET\"") && l.contains("\"PERMISSION_DENIED\"")
                    && l.contains("\"TENANT_ADMIN\"")), lines::toString);
            for (String line : lines) {
                assertFalse(line.contains("s3cr3t"), "a record holds a value: " + line);
                assertFalse(line.endsWith("\n"));
            }
            // The listener saw exactly what the log file holds.
            assertEquals(lines, readLines(store.auditLogPath().orElseThrow()));
        }
    }

    @Test
    void listenerExceptionsAreIgnored() {
        List<String> seen = new CopyOnWriteArrayList<>();
        AuditListener failing = line -> {
            seen.add(line);
            throw new IllegalStateException("listener failure");
        };
        try (SecretStorage store = open(Fixtures.newKey(), failing)) {
            store.create(T, "key", SecretType.TEXT, VALUE.getBytes(UTF_8), "");
            store.updateValue(T, "key", "v2".toCharArray());
            try (SecretSession service = store.session(Principal.service(T))) {
                assertThrows(PermissionDeniedException.class, () -> service.delete(T, "key"));
            }
            assertEquals("v2", store.getSecret(T, "key"));
            assertEquals(3, seen.size());
        }
        assertTrue(seen.size() >= 4, "the batched GET reached the listener on close");
    }

    @Test
    void listenerMayCallTheStore() {
        List<String> seen = new ArrayList<>();
        SecretStorage[] holder = new SecretStorage[1];
        AuditListener reentrant = line -> {
            synchronized (seen) {
                seen.add(line);
            }
            holder[0].info(T, "key"); // audited only when denied: no recursion
        };
        try (SecretStorage store = open(Fixtures.newKey(), reentrant)) {
            holder[0] = store;
            store.create(T, "key", SecretType.TEXT, VALUE.getBytes(UTF_8), "");
            assertEquals(1, seen.size());
        }
    }

    @Test
    void verifyIntactThenTampered() throws Exception {
        try (SecretStorage store = open(Fixtures.newKey(), null)) {
            Path log = store.auditLogPath().orElseThrow();
            assertEquals(dir.resolve("store.db.audit.jsonl"), log);
            for (int i = 0; i < 4; i++) {
                store.create(T, "k" + i, SecretType.TEXT, VALUE.getBytes(UTF_8), "");
            }
            AuditVerification ok = store.verifyAuditLog();
            assertTrue(ok.isIntact(), ok::toString);
            assertEquals(4, ok.records());
            assertEquals(4, ok.lastSeq());
            assertEquals(0, ok.problemLine());
            assertNull(ok.problem());

            List<String> lines = readLines(log);
            // One byte edited in line 2.
            List<String> edited = new ArrayList<>(lines);
            String line = edited.get(1);
            int at = line.indexOf("\"k1\"") + 2;
            edited.set(1, line.substring(0, at) + 'X' + line.substring(at + 1));
            AuditVerification editedResult = store.verifyAuditLog(write("edited.jsonl", edited));
            assertFalse(editedResult.isIntact());
            assertEquals(2, editedResult.problemLine());
            assertEquals(1, editedResult.records());
            assertTrue(editedResult.problem().contains("MAC"), editedResult.problem());

            // Line 3 deleted.
            List<String> cut = new ArrayList<>(lines);
            cut.remove(2);
            AuditVerification cutResult = store.verifyAuditLog(write("cut.jsonl", cut));
            assertEquals(3, cutResult.problemLine());
            assertEquals(2, cutResult.lastSeq());
            assertTrue(cutResult.problem().contains("chain"), cutResult.problem());

            // A missing log while the store has sealed records was deleted: reported, first record named.
            AuditVerification missing = store.verifyAuditLog(dir.resolve("missing.jsonl"));
            assertEquals(1, missing.problemLine());
            assertTrue(missing.problem().contains("does not exist"), missing.problem());
            assertTrue(store.verifyAuditLog().isIntact(), "the store's own log is untouched");
        }
    }

    @Test
    void auditSettings() {
        Path custom = dir.resolve("logs-audit.jsonl");
        try (SecretStorage store = SecretStorage.open(dir.resolve("a.db"),
                SecretStorageOptions.builder().masterKey(Fixtures.newKey()).auditLog(custom).build())) {
            store.create(T, "key", SecretType.TEXT, VALUE.getBytes(UTF_8), "");
            assertEquals(Optional.of(custom), store.auditLogPath());
            assertEquals(1, store.verifyAuditLog().records());
        }
        List<String> seen = new CopyOnWriteArrayList<>();
        try (SecretStorage store = SecretStorage.open(dir.resolve("b.db"), SecretStorageOptions.builder()
                .masterKey(Fixtures.newKey()).auditEnabled(false).auditListener(seen::add).build())) {
            store.create(T, "key", SecretType.TEXT, VALUE.getBytes(UTF_8), "");
            assertEquals(Optional.empty(), store.auditLogPath());
            assertThrows(InvalidArgumentException.class, store::verifyAuditLog);
        }
        assertTrue(seen.isEmpty());
        assertFalse(Files.exists(dir.resolve("b.db.audit.jsonl")));
    }

    @Test
    void rotateMasterKeyThenOnlyTheNewKeyOpens() {
        byte[] oldKey = Fixtures.newKey();
        byte[] newKey = Fixtures.newKey();
        try (SecretStorage store = open(oldKey, null)) {
            store.create(T, "key", SecretType.TEXT, VALUE.getBytes(UTF_8), "");
            store.create("tenant-b", "key", SecretType.TEXT, "b".getBytes(UTF_8), "");
            RotationReport report = store.rotateMasterKey(newKey);
            assertTrue(report.keys() >= 2, report::toString);
            assertEquals(0, report.versions());
            assertEquals(VALUE, store.getSecret(T, "key"), "the open handle keeps working");
            assertThrows(InvalidArgumentException.class, () -> store.rotateMasterKey(new byte[5]));
        }
        assertThrows(WrongMasterKeyException.class, () -> open(oldKey, null));
        try (SecretStorage store = open(newKey, null)) {
            assertEquals(VALUE, store.getSecret(T, "key"));
            assertEquals("b", store.getSecret("tenant-b", "key"));
            assertTrue(store.verifyAuditLog().isIntact(), "the audit key survives the rotation");
        }
    }

    @Test
    void rotateTenantKeyKeepsValuesReadable() {
        byte[] key = Fixtures.newKey();
        try (SecretStorage store = open(key, null)) {
            store.create(T, "key", SecretType.TEXT, VALUE.getBytes(UTF_8), "");
            store.updateValue(T, "key", "v2".toCharArray());
            store.create(T, "pem", SecretType.TEXT_FILE, FILE_VALUE.getBytes(UTF_8), "");
            RotationReport report = store.rotateTenantKey(T);
            assertEquals(1, report.keys());
            assertEquals(3, report.versions());
            assertEquals("v2", store.getSecret(T, "key"));
            assertEquals(FILE_VALUE, new String(store.getSecretBytes(T, "pem"), UTF_8));
            assertEquals(VALUE, new String(readVersion(store, 1), UTF_8));
        }
        try (SecretStorage store = open(key, null)) {
            assertEquals(VALUE, store.getSecret(T, "key"), "the rollback to version 1 stays current");
            assertEquals(FILE_VALUE, new String(store.getSecretBytes(T, "pem"), UTF_8));
        }
    }

    @Test
    void rotationPlansChangeNothingAndNeedTheRotationsPermission() throws Exception {
        List<String> lines = new CopyOnWriteArrayList<>();
        try (SecretStorage store = open(Fixtures.newKey(), lines::add)) {
            store.create(T, "key", SecretType.TEXT, VALUE.getBytes(UTF_8), "");
            store.updateValue(T, "key", "v2".toCharArray());
            store.flushUsage();
            int records = lines.size();
            byte[] db = storeBytes();
            RotationPlan tenant = store.planTenantKeyRotation(T);
            assertEquals(new RotationPlan(1, 1, 1, 2, 2, 2, tenant.estimatedMicros()), tenant);
            RotationPlan master = store.planMasterKeyRotation();
            assertEquals(1, master.tenants());
            assertEquals(1, master.keys());
            assertEquals(2, master.keyId());
            assertEquals(records, lines.size(), "no audit record");
            assertTrue(java.util.Arrays.equals(db, storeBytes()), "the store's bytes are unchanged");
            assertThrows(NotFoundException.class, () -> store.planTenantKeyRotation("nobody"));
            try (SecretSession admin = store.session(Principal.tenantAdmin(T))) {
                assertEquals(2, admin.planTenantKeyRotation(T).versions());
                assertThrows(PermissionDeniedException.class, admin::planMasterKeyRotation);
            }
            assertEquals(2, store.rotateTenantKey(T).keyId(), "the plan created no key");
        }
    }

    /** The store file's bytes followed by its write-ahead log's. */
    private byte[] storeBytes() throws java.io.IOException {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        out.write(Files.readAllBytes(dir.resolve("store.db")));
        Path wal = dir.resolve("store.db-wal");
        if (Files.exists(wal)) {
            out.write(Files.readAllBytes(wal));
        }
        return out.toByteArray();
    }

    /** Version 1's value, through a rollback (the old version was re-encrypted too). */
    private static byte[] readVersion(SecretStorage store, long version) {
        store.rollback(T, "key", version);
        return store.getSecretBytes(T, "key");
    }

    @Test
    void unusedAndStale() {
        try (SecretStorage store = open(Fixtures.newKey(), null)) {
            store.create(T, "used", SecretType.TEXT, VALUE.getBytes(UTF_8), "");
            store.create(T, "idle", SecretType.TEXT, VALUE.getBytes(UTF_8), "");
            store.getSecret(T, "used");
            assertEquals(List.of("idle"), names(store.unused(T, Duration.ofHours(1))));
            assertEquals(List.of("idle", "used"), names(store.unused(T, Duration.ZERO)));
            assertEquals(List.of("idle", "used"), names(store.stale(T, Duration.ZERO)));
            assertTrue(store.stale(T, Duration.ofDays(1)).isEmpty());
            assertThrows(InvalidArgumentException.class, () -> store.stale(T, Duration.ofSeconds(-1)));
            try (SecretSession service = store.session(Principal.service(T));
                    SecretSession customer = store.session(Principal.customerUser(T))) {
                assertEquals(List.of("idle"), names(service.unused(T, Duration.ofHours(1))));
                assertThrows(PermissionDeniedException.class, () -> customer.stale(T, Duration.ZERO));
            }
        }
    }

    private static List<String> names(List<SecretInfo> infos) {
        return infos.stream().map(SecretInfo::name).toList();
    }

    private static List<String> readLines(Path file) {
        try {
            return Files.readAllLines(file, UTF_8);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private Path write(String name, List<String> lines) throws java.io.IOException {
        Path file = dir.resolve(name);
        Files.write(file, lines, UTF_8);
        return file;
    }
}
