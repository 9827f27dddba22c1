package org.tbsecrets;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Unicode tenants, names and values, and the largest values. */
class UnicodeAndSizeTest {
    @TempDir Path dir;
    SecretStorage store;

    byte[] key;

    @BeforeEach
    void open() {
        key = Fixtures.newKey();
        store = SecretStorage.open(dir.resolve("store.db"), SecretStorageOptions.withMasterKey(key));
    }

    @AfterEach
    void close() {
        store.close();
    }

    @Test
    void unicodeNamesTenantsAndValuesRoundTrip() {
        String tenant = "арендатор-🏭";
        String name = "ключ API 🔑 名前";
        String value = "pässwörd ∆ 密码 🔐 \u0000 nul and \t tab";
        store.create(tenant, name, SecretType.TEXT, value.toCharArray(), "описание ✓");
        assertEquals(value, store.getSecret(tenant, name));
        assertArrayEquals(value.getBytes(UTF_8), store.getSecretBytes(tenant, name));
        SecretInfo info = store.info(tenant, name);
        assertEquals(tenant, info.tenantId());
        assertEquals(name, info.name());
        assertEquals("описание ✓", info.description());
        assertEquals(name, store.list(tenant, "🔑", 0, 0).items().get(0).name());

        String doc = "{\"пароль\": \"${secret:" + name + "}\", \"emoji\": \"🙂\"}";
        assertEquals("{\"пароль\": \"pässwörd ∆ 密码 🔐 \\u0000 nul and \\t tab\", \"emoji\": \"🙂\"}",
                store.resolve(tenant, doc));
        assertEquals("x" + value, store.resolveText(tenant, "x${secret:" + name + "}"));
    }

    @Test
    void longestNamesAndTenantsLeaveTheStackBuffers() {
        String tenant = "t".repeat(255);
        String name = "é".repeat(255); // 255 characters, 510 bytes
        String value = "ü".repeat(2048);
        store.create(tenant, name, SecretType.TEXT, value.getBytes(UTF_8), "");
        assertEquals(value, store.getSecret(tenant, name));
        assertThrows(InvalidArgumentException.class, () -> store.getSecret(tenant, "é".repeat(256)));
        assertThrows(InvalidArgumentException.class, () -> store.getSecret("t".repeat(256), name));
        assertThrows(InvalidArgumentException.class,
                () -> store.create(tenant, "n", SecretType.TEXT, "ü".repeat(2049).getBytes(UTF_8), ""));
    }

    @Test
    void valuesLongerThanTheCallBufferTakeTheObjectPath() throws Exception {
        String longValue = "v".repeat(6000);
        try (SecretStorage wide = SecretStorage.open(dir.resolve("store.db"),
                SecretStorageOptions.builder().masterKey(key).maxTextChars(8000).build())) {
            wide.create("t", "long", SecretType.TEXT, longValue.getBytes(UTF_8), "");
        }
        // A handle with small limits sizes its call buffers for 10-character values; a fresh
        // thread has no larger buffer yet.
        try (SecretStorage narrow = SecretStorage.open(dir.resolve("store.db"),
                SecretStorageOptions.builder().masterKey(key).maxTextChars(10).build())) {
            String[] read = new String[1];
            Thread t = new Thread(() -> read[0] = narrow.getSecret("t", "long"));
            t.start();
            t.join();
            assertEquals(longValue, read[0]);
            assertEquals(1, narrow.info("t", "long").useCount(), "read once, not twice");
        }
    }

    @Test
    void nonAsciiTenantFacade() {
        store.create("арендатор", "k", SecretType.TEXT, "v".getBytes(UTF_8), "");
        assertEquals("v", store.forTenant("арендатор").getSecret("k"));
        assertEquals("v", store.forTenant("арендатор").getSecret("k"));
    }

    @Test
    void unpairedSurrogatesAreRejectedNotMangled() {
        store.create("t", "a?", SecretType.TEXT, "v".getBytes(UTF_8), "");
        assertThrows(InvalidArgumentException.class, () -> store.getSecret("t", "a\uD800"),
                "a lone surrogate must not silently become '?'");
        assertThrows(InvalidArgumentException.class, () -> store.getSecret("t\uDC00", "a?"));
        assertThrows(InvalidArgumentException.class,
                () -> store.create("t", "b", SecretType.TEXT, new char[] {'x', '\uD800'}, ""));
        assertThrows(InvalidArgumentException.class, () -> store.getSecret("t", "x".repeat(300) + "\uD800"));
    }

    @Test
    void textFileOf512KiB() {
        byte[] pem = new byte[512 * 1024];
        new Random(42).nextBytes(pem);
        store.create("t", "big", SecretType.TEXT_FILE, pem, "the largest default TEXT_FILE");
        byte[] read = store.getSecretBytes("t", "big");
        assertArrayEquals(pem, read);
        Arrays.fill(read, (byte) 0);

        byte[] tooBig = Arrays.copyOf(pem, pem.length + 1);
        assertThrows(InvalidArgumentException.class, () -> store.updateValue("t", "big", tooBig));

        // A 512 KiB PEM-like text resolves into JSON with its newlines escaped.
        String line = "MIIBlDCCATmgAwIBAgIUPv6LsHBBdoNAV9/CMIESfllZve4wCgYIKoZIzj0EAwIw\n";
        String text = ("-----BEGIN CERTIFICATE-----\n" + line.repeat(8200)).substring(0, 512 * 1024);
        store.create("t", "ca", SecretType.TEXT_FILE, text.getBytes(UTF_8), "");
        String resolved = store.resolve("t", "{\"ca\": \"${secret:ca;type:TEXT_FILE}\"}");
        assertEquals(text, Fixtures.json(resolved).get("ca").asText());
    }
}
