package org.tbsecrets.spring;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Map;
import org.tbsecrets.SecretStorage;
import org.tbsecrets.SecretStorageOptions;
import org.tbsecrets.SecretType;

/** A store with the tests' secrets in tenant {@value #TENANT}, and its master key file. */
final class TestStore {
    static final String TENANT = "default";
    static final String DB_PASSWORD = "s3cr3t-DB-pa55w0rd-7f1e";
    static final String PW = "pw-Zq81-kx";
    static final String API_TOKEN = "api-token-Lm42-uu";
    static final String DOLLAR = "d0ll@r-${x}-\\${y}-end";
    static final String CA = "-----BEGIN CERTIFICATE-----\nMIIBcaFixtureOnly\"quoted\"\n-----END CERTIFICATE-----\n";

    final Path store;
    final Path keyFile;

    private TestStore(Path store, Path keyFile) {
        this.store = store;
        this.keyFile = keyFile;
    }

    static TestStore create(Path dir) {
        byte[] key = new byte[32];
        new SecureRandom().nextBytes(key);
        Path store = dir.resolve("secrets.db");
        Path keyFile = writeKey(dir.resolve("master.key"), key);
        try (SecretStorage s = SecretStorage.open(store, SecretStorageOptions.withMasterKey(key))) {
            s.create(TENANT, "db-password", SecretType.TEXT, DB_PASSWORD.toCharArray(), "");
            s.create(TENANT, "pw", SecretType.TEXT, PW.toCharArray(), "");
            s.create(TENANT, "api-token", SecretType.TEXT, API_TOKEN.toCharArray(), "");
            s.create(TENANT, "dollar", SecretType.TEXT, DOLLAR.toCharArray(), "");
            s.create(TENANT, "broker-ca", SecretType.TEXT_FILE, CA.getBytes(StandardCharsets.UTF_8), "");
        } finally {
            Arrays.fill(key, (byte) 0);
        }
        return new TestStore(store, keyFile);
    }

    static Path writeKey(Path file, byte[] key) {
        try {
            Files.writeString(file, Base64.getEncoder().encodeToString(key), StandardCharsets.US_ASCII);
            Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-------"));
            return file;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The tbsecrets.* properties that point at this store. */
    Map<String, Object> properties() {
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("tbsecrets.store", store.toString());
        p.put("tbsecrets.master-key-file", keyFile.toString());
        p.put("tbsecrets.tenant", TENANT);
        return p;
    }

    Path auditLog() {
        return store.resolveSibling(store.getFileName() + ".audit.jsonl");
    }
}
