package org.tbsecrets;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Export bundles through Java: export, trusted import, dry run, conflicts, tampering. */
class BundleTest {
    private static final String T = "tenant-a";
    /** A test-only age key pair (age-keygen). */
    private static final String IDENTITY =
            "AGE-SECRET-KEY-1KZYSREY325WLLZQLTD7C8H76KZDP7UZAPCXU6NSEFNPLC9WVSCWQTXQ0KY\n";
    private static final String RECIPIENT = "age1hue872wg5sr4xjy7j8qtm4ds8s2ux9mlpe06t5fyumfhyxz53efsjcs5eq";
    private static final String VALUE = "java-bundle-s3cr3t";

    @TempDir Path dir;

    @Test
    void exportsAndImportsBetweenStoresWithDifferentKeys() throws Exception {
        Files.createDirectories(dir.resolve("from"));
        Files.createDirectories(dir.resolve("to"));
        try (SecretStorage from = Fixtures.open(dir.resolve("from"));
                SecretStorage to = Fixtures.open(dir.resolve("to"))) {
            from.create(T, "db", SecretType.TEXT, VALUE.getBytes(UTF_8), "the db");
            byte[] bundle = from.exportBundle(T, RECIPIENT, false);
            assertFalse(new String(bundle, UTF_8).contains(VALUE));
            String key = from.exportKey();
            assertTrue(key.startsWith("ed25519:"), key);
            byte[] identity = IDENTITY.getBytes(UTF_8);

            assertThrows(IntegrityException.class,
                    () -> to.importBundle(T, bundle, identity, null, "fail", false));
            JsonNode dry = Fixtures.json(to.importBundle(T, bundle, identity, key, "fail", true));
            assertTrue(dry.get("dry_run").asBoolean());
            assertEquals("create", dry.get("items").get(0).get("action").asText());
            assertThrows(NotFoundException.class, () -> to.getSecret(T, "db"));

            JsonNode done = Fixtures.json(to.importBundle(T, bundle, identity, key, "fail", false));
            assertEquals(1, done.get("items").get(0).get("version").asInt());
            assertEquals(VALUE, to.getSecret(T, "db"));
            assertThrows(AlreadyExistsException.class,
                    () -> to.importBundle(T, bundle, identity, key, "fail", false));
            assertThrows(InvalidArgumentException.class,
                    () -> to.importBundle(T, bundle, identity, key, "merge", false));
            byte[] flipped = bundle.clone();
            flipped[flipped.length - 1] ^= 1;
            assertThrows(IntegrityException.class,
                    () -> to.importBundle(T, flipped, identity, key, "skip", false));
            assertThrows(NullPointerException.class,
                    () -> to.importBundle(T, null, identity, key, "skip", false));
        }
    }

    @Test
    void manifestReportsEveryMissingSecret() throws Exception {
        try (SecretStorage store = Fixtures.open(dir)) {
            store.create(T, "db", SecretType.TEXT, VALUE.getBytes(UTF_8), "");
            java.util.Map<String, String> docs = new java.util.LinkedHashMap<>();
            docs.put("a.json", "{\"p\": \"${secret:db;type:TEXT}\"}");
            docs.put("b.txt", "${secret:smtp} ${secret:ca;type:TEXT_FILE}");
            JsonNode m = Fixtures.json(store.manifest(T, docs));
            java.util.Map<String, String> status = new java.util.TreeMap<>();
            m.get("secrets").forEach(e -> status.put(e.get("name").asText(), e.get("status").asText()));
            assertEquals(java.util.Map.of("ca", "MISSING", "db", "PRESENT", "smtp", "MISSING"), status);
            assertThrows(MalformedPlaceholderException.class,
                    () -> store.manifest(T, java.util.Map.of("bad.txt", "${secret:")));
        }
    }
}
