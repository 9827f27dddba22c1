package org.tbsecrets;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every public method of {@link SecretStorage} and {@link TenantSecrets}, on the happy path. */
class SecretStorageTest {
    private static final String T = "13814000-1dd2-11b2-8080-808080808080";

    @TempDir Path dir;
    SecretStorage store;

    @BeforeEach
    void open() {
        store = Fixtures.open(dir);
    }

    @AfterEach
    void close() {
        store.close();
    }

    @Test
    void createInfoAndRead() {
        SecretInfo info = store.create(T, "MyApiKey", SecretType.TEXT, "s3cr3t".getBytes(UTF_8), "partner API key");
        assertEquals(T, info.tenantId());
        assertEquals("MyApiKey", info.name());
        assertEquals(SecretType.TEXT, info.type());
        assertEquals("partner API key", info.description());
        assertEquals(1, info.version());
        assertEquals(info.createdAt(), info.updatedAt());
        assertEquals(info.createdAt(), info.valueUpdatedAt());
        assertNull(info.lastUsedAt());
        assertEquals(0, info.useCount());

        assertEquals("s3cr3t", store.getSecret(T, "MyApiKey"));
        assertArrayEquals("s3cr3t".getBytes(UTF_8), store.getSecretBytes(T, "MyApiKey"));

        SecretInfo read = store.info(T, "MyApiKey");
        assertEquals(2, read.useCount(), "info flushes the batched usage counters");
        assertNotNull(read.lastUsedAt());
        assertEquals(info.version(), read.version());
    }

    @Test
    void createFromCharsLeavesTheCallersArrayAlone() {
        char[] value = "pa55-wörd".toCharArray();
        store.create(T, "db", SecretType.TEXT, value, "");
        assertArrayEquals("pa55-wörd".toCharArray(), value);
        assertEquals("pa55-wörd", store.getSecret(T, "db"));
    }

    @Test
    void updatesVersionsHistoryAndRollback() {
        store.create(T, "k", SecretType.TEXT, "v1".getBytes(UTF_8), "");
        assertEquals(2, store.updateValue(T, "k", "v2".getBytes(UTF_8)).version());
        assertEquals(3, store.updateValue(T, "k", "v3".getBytes(UTF_8), 2).version());
        assertEquals(4, store.updateValue(T, "k", "v4".toCharArray()).version());
        assertEquals(5, store.updateValue(T, "k", "v5".toCharArray(), 4).version());
        assertEquals("v5", store.getSecret(T, "k"));

        List<SecretVersion> history = store.history(T, "k");
        assertEquals(List.of(5L, 4L, 3L, 2L, 1L), history.stream().map(SecretVersion::version).toList());
        assertTrue(history.get(0).current());
        assertFalse(history.get(1).current());
        assertNotNull(history.get(4).createdAt());

        SecretInfo rolled = store.rollback(T, "k", 1);
        assertEquals(6, rolled.version());
        assertEquals("v1", store.getSecret(T, "k"));

        SecretInfo described = store.updateDescription(T, "k", "rotated monthly");
        assertEquals("rotated monthly", described.description());
        assertEquals(6, described.version(), "a description change writes no version");
    }

    @Test
    void listPagesAndFilters() {
        for (String name : List.of("b-api", "a-api", "c-db", "d-api")) {
            store.create(T, name, SecretType.TEXT, "x".getBytes(UTF_8), "");
        }
        store.create("other-tenant", "a-api", SecretType.TEXT, "y".getBytes(UTF_8), "");

        SecretPage all = store.list(T);
        assertEquals(List.of("a-api", "b-api", "c-db", "d-api"), all.items().stream().map(SecretInfo::name).toList());
        assertEquals(4, all.total());
        assertFalse(all.hasMore());

        SecretPage page = store.list(T, "api", 1, 1);
        assertEquals(List.of("b-api"), page.items().stream().map(SecretInfo::name).toList());
        assertEquals(3, page.total());
        assertTrue(page.hasMore());
        assertThrows(UnsupportedOperationException.class, () -> page.items().clear());
        assertEquals("b-api", page.nextAfter());

        SecretPage first = store.list(T, null, (String) null, 3);
        assertEquals(List.of("a-api", "b-api", "c-db"), first.items().stream().map(SecretInfo::name).toList());
        assertEquals("c-db", first.nextAfter());
        SecretPage last = store.list(T, null, first.nextAfter(), 3);
        assertEquals(List.of("d-api"), last.items().stream().map(SecretInfo::name).toList());
        assertFalse(last.hasMore());
        assertNull(last.nextAfter());
        SecretPage filtered = store.list(T, "api", "a-api", 0);
        assertEquals(List.of("b-api", "d-api"), filtered.items().stream().map(SecretInfo::name).toList());
        assertEquals(3, filtered.total());
    }

    @Test
    void deleteAndForcedDelete() {
        store.create(T, "a", SecretType.TEXT, "x".getBytes(UTF_8), "");
        store.delete(T, "a");
        assertThrows(NotFoundException.class, () -> store.info(T, "a"));

        store.create(T, "b", SecretType.TEXT, "x".getBytes(UTF_8), "");
        store.trackReferences(T, "rule-node:1", "{\"p\": \"${secret:b}\"}");
        assertThrows(InUseException.class, () -> store.delete(T, "b"));
        store.delete(T, "b", true);
        assertThrows(NotFoundException.class, () -> store.getSecret(T, "b"));
        assertEquals(List.of(new SecretUsage("rule-node:1", "b", null)), store.whereUsed(T, "b"),
                "a forced delete keeps the references, so where-used shows what breaks");
    }

    @Test
    void undeleteListDeletedAndDestroy() {
        store.create(T, "a", SecretType.TEXT, "v1".getBytes(UTF_8), "");
        store.updateValue(T, "a", "v2".getBytes(UTF_8));
        store.create(T, "keep", SecretType.TEXT, "k".getBytes(UTF_8), "");
        store.delete(T, "a");
        assertThrows(NotFoundException.class, () -> store.getSecret(T, "a"));
        assertEquals(List.of("keep"), store.list(T).items().stream().map(SecretInfo::name).toList());
        SecretPage deleted = store.listDeleted(T, null, 0, 0);
        assertEquals(1, deleted.items().size());
        assertEquals("a", deleted.items().get(0).name());
        assertTrue(deleted.items().get(0).isDeleted());
        assertNotNull(deleted.items().get(0).deletedAt());
        assertFalse(store.info(T, "keep").isDeleted());
        AlreadyExistsException taken = assertThrows(AlreadyExistsException.class,
                () -> store.create(T, "a", SecretType.TEXT, "x".getBytes(UTF_8), ""));
        assertTrue(taken.getMessage().contains("undelete"), taken.getMessage());

        store.undelete(T, "a");
        assertEquals("v2", store.getSecret(T, "a"));
        assertEquals(2, store.history(T, "a").size());
        assertThrows(NotFoundException.class, () -> store.undelete(T, "a"));

        store.destroy(T, "a");
        assertThrows(NotFoundException.class, () -> store.undelete(T, "a"));
        assertThrows(NotFoundException.class, () -> store.destroy(T, "a"));
        assertTrue(store.listDeleted(T, null, 0, 0).items().isEmpty());
        store.create(T, "a", SecretType.TEXT, "fresh".getBytes(UTF_8), "");
        assertEquals(1, store.info(T, "a").version());
    }

    @Test
    void aZeroDeletedRetentionErasesOnDelete() {
        SecretStorageOptions options = SecretStorageOptions.builder()
                .masterKey(Fixtures.newKey())
                .deletedRetention(Duration.ZERO)
                .build();
        assertEquals(Duration.ofDays(30), SecretStorageOptions.builder().build().deletedRetention());
        assertThrows(InvalidArgumentException.class,
                () -> SecretStorageOptions.builder().deletedRetention(Duration.ofSeconds(-1)));
        try (SecretStorage erasing = SecretStorage.open(dir.resolve("zero.db"), options)) {
            erasing.create(T, "a", SecretType.TEXT, "v".getBytes(UTF_8), "");
            erasing.delete(T, "a");
            assertTrue(erasing.listDeleted(T, null, 0, 0).items().isEmpty());
            assertThrows(NotFoundException.class, () -> erasing.undelete(T, "a"));
            erasing.create(T, "a", SecretType.TEXT, "again".getBytes(UTF_8), "");
        }
    }

    @Test
    void resolvesYamlScalarsByYamlRules() {
        store.create(T, "mqtt-pass", SecretType.TEXT, "yes: #1".getBytes(UTF_8), "");
        store.create(T, "ca", SecretType.TEXT_FILE,
                "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".getBytes(UTF_8), "");
        String yaml = "broker:\n"
                + "  password: ${secret:mqtt-pass}\n"
                + "  port: 1883\n"
                + "  ca: ${secret:ca;type:TEXT_FILE}\n"
                + "  quoted: \"x ${secret:mqtt-pass}\"\n";
        assertEquals("broker:\n"
                + "  password: \"yes: #1\"\n"
                + "  port: 1883\n"
                + "  ca: |\n"
                + "    -----BEGIN CERTIFICATE-----\n"
                + "    MIIB\n"
                + "    -----END CERTIFICATE-----\n"
                + "  quoted: \"x yes: #1\"\n", store.resolveYaml(T, yaml));
        String plain = "port: 1883\n";
        assertSame(plain, store.resolveYaml(T, plain), "nothing to replace: the input itself");

        var missing = assertThrows(UnresolvedPlaceholderException.class,
                () -> store.resolveYaml(T, "a: ${secret:gone}\nb: ${secret:mqtt-pass}\n"));
        assertEquals(List.of("gone"), missing.problems().stream().map(PlaceholderProblem::name).toList());
        var notYaml = assertThrows(InvalidArgumentException.class, () -> store.resolveYaml(T, "a: [1\n"));
        assertTrue(notYaml.getMessage().contains("not valid YAML"), notYaml.getMessage());
        assertFalse(notYaml.getMessage().contains("yes: #1"), "no value in the error");
        assertThrows(NullPointerException.class, () -> store.resolveYaml(T, null));
    }

    @Test
    void resolvesJsonAndTextAsStrings() {
        Fixtures.loadSecrets(store);
        String config = Fixtures.config("rest_api_call_node.json");
        String resolved = store.resolve(Fixtures.TENANT, config);
        var node = Fixtures.json(resolved).get("configuration");
        assertEquals("Bearer tok_9f8e7d6c5b4a39281706f5e4d3c2b1a0", node.get("headers").get("Authorization").asText());
        assertEquals("p@ss \"quoted\" \\ back", node.get("credentials").get("password").asText());
        assertEquals("https://api.partner.example/v1/devices/${deviceName}/telemetry",
                node.get("restEndpointUrlPattern").asText(), "ThingsBoard metadata patterns stay");

        assertEquals("user=tb pw=k3y-pa55 $${x}",
                store.resolveText(Fixtures.TENANT, "user=tb pw=${secret:plant-client-key-password} $${x}"));

        String plain = "{\"no\": \"placeholders\"}";
        assertSame(plain, store.resolve(Fixtures.TENANT, plain), "nothing to replace: the input itself");
        assertSame(plain, store.resolveText(Fixtures.TENANT, plain));
    }

    @Test
    void resolvesBytesAndBuffers() {
        Fixtures.loadSecrets(store);
        String config = Fixtures.config("mqtt_node_tls.json");
        String expected = store.resolve(Fixtures.TENANT, config);
        byte[] bytes = config.getBytes(UTF_8);

        assertEquals(expected, new String(store.resolveBytes(Fixtures.TENANT, bytes), UTF_8));

        ByteBuffer heap = ByteBuffer.allocate(bytes.length + 10);
        heap.position(5);
        heap.put(bytes);
        heap.flip().position(5);
        assertEquals(expected, UTF_8.decode(store.resolveBytes(Fixtures.TENANT, heap)).toString());
        assertEquals(5, heap.position(), "the input buffer's position is not changed");

        ByteBuffer direct = ByteBuffer.allocateDirect(bytes.length + 3);
        direct.put((byte) '#').put(bytes).flip().position(1);
        assertEquals(expected, UTF_8.decode(store.resolveBytes(Fixtures.TENANT, direct)).toString());

        ByteBuffer readOnly = ByteBuffer.wrap(bytes).asReadOnlyBuffer();
        assertEquals(expected, UTF_8.decode(store.resolveBytes(Fixtures.TENANT, readOnly)).toString());

        byte[] text = "Bearer ${secret:partner-api-token}".getBytes(UTF_8);
        assertEquals("Bearer tok_9f8e7d6c5b4a39281706f5e4d3c2b1a0",
                new String(store.resolveTextBytes(Fixtures.TENANT, text), UTF_8));
        ByteBuffer directText = ByteBuffer.allocateDirect(text.length).put(text).flip();
        assertEquals("Bearer tok_9f8e7d6c5b4a39281706f5e4d3c2b1a0",
                UTF_8.decode(store.resolveTextBytes(Fixtures.TENANT, directText)).toString());

        byte[] plain = "{\"a\": 1}".getBytes(UTF_8);
        assertSame(plain, store.resolveBytes(Fixtures.TENANT, plain), "nothing to replace: the input itself");
        assertSame(plain, store.resolveTextBytes(Fixtures.TENANT, plain));
        ByteBuffer plainBuffer = ByteBuffer.wrap(plain);
        assertEquals(plainBuffer, store.resolveTextBytes(Fixtures.TENANT, plainBuffer));
    }

    @Test
    void resolveIntoACallersBuffer() {
        Fixtures.loadSecrets(store);
        String expected = "Bearer tok_9f8e7d6c5b4a39281706f5e4d3c2b1a0";
        byte[] text = "Bearer ${secret:partner-api-token}".getBytes(UTF_8);
        ByteBuffer doc = ByteBuffer.allocateDirect(text.length).put(text).flip();

        ByteBuffer out = ByteBuffer.allocateDirect(64).position(2);
        assertEquals(expected.length(), store.resolveTextBytes(Fixtures.TENANT, doc, out));
        assertEquals(2 + expected.length(), out.position(), "the output's position moves on");
        assertEquals(0, doc.position(), "the input's position is not changed");
        assertEquals(expected, UTF_8.decode(out.flip().position(2)).toString());

        ByteBuffer small = ByteBuffer.allocateDirect(10);
        assertEquals(expected.length(), store.resolveTextBytes(Fixtures.TENANT, doc, small),
                "too small: the length needed");
        assertEquals(0, small.position(), "nothing written");
        assertFalse(UTF_8.decode(small.duplicate().clear()).toString().contains("tok_"));

        byte[] missing = "${secret:partner-api-token} ${secret:no-such}".getBytes(UTF_8);
        ByteBuffer failing = ByteBuffer.allocateDirect(missing.length).put(missing).flip();
        ByteBuffer target = ByteBuffer.allocateDirect(128);
        assertThrows(UnresolvedPlaceholderException.class,
                () -> store.resolveTextBytes(Fixtures.TENANT, failing, target));
        assertEquals(0, target.position());
        assertFalse(UTF_8.decode(target.duplicate().clear()).toString().contains("tok_"),
                "a failed call leaves no value in the output");

        InvalidArgumentException overlap = assertThrows(InvalidArgumentException.class,
                () -> store.resolveTextBytes(Fixtures.TENANT, doc, doc.duplicate().clear()));
        assertTrue(overlap.getMessage().contains("overlaps"), overlap.getMessage());

        // JSON, and heap buffers (resolved through an array, then copied).
        byte[] json = "{\"token\": \"${secret:partner-api-token}\", \"n\": 1}".getBytes(UTF_8);
        ByteBuffer heapOut = ByteBuffer.allocate(100);
        long n = store.resolveBytes(Fixtures.TENANT, ByteBuffer.wrap(json), heapOut);
        assertEquals("{\"token\": \"tok_9f8e7d6c5b4a39281706f5e4d3c2b1a0\", \"n\": 1}",
                new String(heapOut.array(), 0, (int) n, UTF_8));
        byte[] plain = "no placeholder".getBytes(UTF_8);
        ByteBuffer plainOut = ByteBuffer.allocateDirect(32);
        assertEquals(plain.length, store.resolveTextBytes(Fixtures.TENANT,
                ByteBuffer.allocateDirect(plain.length).put(plain).flip(), plainOut));
        assertEquals("no placeholder", UTF_8.decode(plainOut.flip()).toString(), "copied as it is");
        assertThrows(java.nio.ReadOnlyBufferException.class,
                () -> store.resolveTextBytes(Fixtures.TENANT, doc, ByteBuffer.allocate(64).asReadOnlyBuffer()));
    }

    @Test
    void referencesTrackingAndWhereUsed() {
        String config = Fixtures.config("rest_api_call_node.json");
        List<SecretRef> refs = store.references(config);
        assertEquals(List.of(new SecretRef("partner-api-token", SecretType.TEXT),
                new SecretRef("partner-basic-password", SecretType.TEXT)), refs);
        assertEquals(List.of(new SecretRef("ca", SecretType.TEXT_FILE), new SecretRef("x", null)),
                store.references("${secret:ca;type:FILE} and ${secret:x}"));

        assertEquals(refs, store.trackReferences(T, "rule-node:42", config));
        assertEquals(List.of(new SecretUsage("rule-node:42", "partner-api-token", SecretType.TEXT)),
                store.whereUsed(T, "partner-api-token"));
        assertEquals(List.of(), store.whereUsed(T, "partner-api"), "exact, not a text search");
        assertEquals(2, store.untrack(T, "rule-node:42"));
        assertEquals(List.of(), store.whereUsed(T, "partner-api-token"));
    }

    @Test
    void flushUsageWritesCounters() {
        store.create(T, "k", SecretType.TEXT, "v".getBytes(UTF_8), "");
        for (int i = 0; i < 3; i++) {
            store.getSecret(T, "k");
        }
        store.flushUsage();
        assertEquals(3, store.list(T).items().get(0).useCount());
    }

    @Test
    void tenantFacade() {
        store.create(T, "MyApiKey", SecretType.TEXT, "key-1".getBytes(UTF_8), "");
        store.create("someone-else", "MyApiKey", SecretType.TEXT, "not yours".getBytes(UTF_8), "");
        TenantSecrets secretStorage = store.forTenant(T);
        assertEquals(T, secretStorage.tenantId());
        assertEquals("key-1", secretStorage.getSecret("MyApiKey"));
        assertArrayEquals("key-1".getBytes(UTF_8), secretStorage.getSecretBytes("MyApiKey"));
        assertEquals("{\"k\":\"key-1\"}", secretStorage.resolve("{\"k\":\"${secret:MyApiKey}\"}"));
        assertEquals("k=key-1", secretStorage.resolveText("k=${secret:MyApiKey}"));
        assertTrue(secretStorage.toString().contains(T));
    }

    @Test
    void lifecycleAccessors() {
        assertEquals(dir.resolve("store.db"), store.path());
        assertFalse(store.isClosed());
        assertTrue(store.toString().contains("store.db"));
        store.close();
        store.close();
        assertTrue(store.isClosed());
        assertTrue(store.toString().endsWith("closed]"));
        assertThrows(IllegalStateException.class, () -> store.getSecret(T, "x"));
    }

    @Test
    void optionsAndReopening() {
        byte[] key = Fixtures.newKey();
        Path file = dir.resolve("opts.db");
        SecretStorageOptions options = SecretStorageOptions.builder()
                .masterKey(key)
                .maxTextChars(4)
                .maxFileBytes(8)
                .maxVersions(2)
                .busyTimeout(Duration.ofSeconds(2))
                .createIfMissing(true)
                .build();
        assertNotSame(key, options.masterKey(), "the options hold a copy, not the caller's array");
        assertArrayEquals(key, options.masterKey());
        assertNull(options.masterKeyFile());
        assertEquals(4, options.maxTextChars());
        assertEquals(8, options.maxFileBytes());
        assertEquals(2, options.maxVersions());
        assertEquals(Duration.ofSeconds(2), options.busyTimeout());
        assertTrue(options.createIfMissing());
        try (SecretStorage s = SecretStorage.open(file, options)) {
            s.create(T, "k", SecretType.TEXT, "1234".getBytes(UTF_8), "");
            assertThrows(InvalidArgumentException.class,
                    () -> s.updateValue(T, "k", "12345".getBytes(UTF_8)), "maxTextChars applies");
            assertThrows(InvalidArgumentException.class,
                    () -> s.create(T, "f", SecretType.TEXT_FILE, new byte[9], ""), "maxFileBytes applies");
            s.updateValue(T, "k", "a".getBytes(UTF_8));
            s.updateValue(T, "k", "b".getBytes(UTF_8));
            assertEquals(2, s.history(T, "k").size(), "maxVersions applies");
        }
        SecretStorageOptions noCreate = SecretStorageOptions.builder().masterKey(key).createIfMissing(false).build();
        try (SecretStorage s = SecretStorage.open(file, noCreate)) {
            assertEquals("b", s.getSecret(T, "k"), "reopened with the same key");
        }
        assertThrows(NotFoundException.class, () -> SecretStorage.open(dir.resolve("missing.db"), noCreate));

        SecretStorageOptions env = SecretStorageOptions.builder().masterKey(key).masterKeyFromEnvironment().build();
        assertNull(env.masterKey());
        assertEquals(SecretStorageOptions.DEFAULT_MAX_VERSIONS, SecretStorageOptions.fromEnvironment().maxVersions());
        assertThrows(InvalidArgumentException.class, () -> SecretStorageOptions.builder().masterKey(new byte[31]));
        assertThrows(InvalidArgumentException.class, () -> SecretStorageOptions.builder().maxVersions(0));
        assertThrows(InvalidArgumentException.class, () -> SecretStorageOptions.builder().busyTimeout(Duration.ofMillis(-1)));
    }

    @Test
    void masterKeyFile() throws Exception {
        Path keyFile = dir.resolve("master.key");
        java.nio.file.Files.writeString(keyFile, java.util.Base64.getEncoder().encodeToString(Fixtures.newKey()) + "\n");
        java.nio.file.Files.setPosixFilePermissions(keyFile, java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
        SecretStorageOptions options = SecretStorageOptions.builder().masterKeyFile(keyFile).build();
        assertEquals(keyFile, options.masterKeyFile());
        try (SecretStorage s = SecretStorage.open(dir.resolve("kf.db"), options)) {
            s.create(T, "k", SecretType.TEXT, "v".getBytes(UTF_8), "");
        }
        try (SecretStorage s = SecretStorage.open(dir.resolve("kf.db"), options)) {
            assertEquals("v", s.getSecret(T, "k"));
        }
        java.nio.file.Files.setPosixFilePermissions(keyFile, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r-----"));
        InvalidArgumentException e = assertThrows(InvalidArgumentException.class,
                () -> SecretStorage.open(dir.resolve("kf.db"), options));
        assertTrue(e.getMessage().contains("group or others"), e.getMessage());
    }

    @Test
    void typesAndCodes() {
        assertEquals(SecretType.TEXT_FILE, SecretType.parse("file"));
        assertEquals(SecretType.TEXT_FILE, SecretType.parse("text-file"));
        assertEquals(SecretType.TEXT, SecretType.parse("TEXT"));
        assertEquals(1, SecretType.TEXT_FILE.number());
        assertThrows(InvalidArgumentException.class, () -> SecretType.parse("BLOB"));
        for (ErrorCode code : ErrorCode.values()) {
            assertEquals(code, ErrorCode.of(code.number()));
        }
        assertEquals(ErrorCode.INTERNAL, ErrorCode.of(99));
        assertNotEquals(ErrorCode.OK, ErrorCode.of(-1));
    }
}
