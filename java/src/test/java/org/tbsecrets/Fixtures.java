package org.tbsecrets;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.LinkedHashMap;
import java.util.Map;

/** Test helpers: keys, stores, and the ThingsBoard fixtures of {@code examples/configs}. */
final class Fixtures {
    static final String TENANT = "default";
    private static final ObjectMapper MAPPER = new ObjectMapper();

    private Fixtures() {}

    static byte[] newKey() {
        byte[] key = new byte[32];
        new SecureRandom().nextBytes(key);
        return key;
    }

    static SecretStorage open(Path dir) {
        return SecretStorage.open(dir.resolve("store.db"), SecretStorageOptions.withMasterKey(newKey()));
    }

    static Path configs() {
        return Path.of(System.getProperty("tbsecrets.fixtures", "../examples/configs"));
    }

    static String config(String name) {
        try {
            return Files.readString(configs().resolve(name), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The secrets of {@code secrets.json}: name → (type, value). */
    static Map<String, Map.Entry<SecretType, String>> secrets() {
        try {
            JsonNode root = MAPPER.readTree(config("secrets.json"));
            Map<String, Map.Entry<SecretType, String>> out = new LinkedHashMap<>();
            for (JsonNode s : root.get("secrets")) {
                out.put(s.get("name").asText(),
                        Map.entry(SecretType.parse(s.get("type").asText()), s.get("value").asText()));
            }
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Stores every fixture secret in tenant {@value #TENANT}. */
    static void loadSecrets(SecretStorage store) {
        secrets().forEach((name, tv) ->
                store.create(TENANT, name, tv.getKey(), tv.getValue().getBytes(StandardCharsets.UTF_8), "fixture"));
    }

    static JsonNode json(String text) {
        try {
            return MAPPER.readTree(text);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
