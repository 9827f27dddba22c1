package org.tbsecrets;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 19, item 4: TEXT_FILE materialisation from Java, with the options, checks and cleanup of
 * the Rust, C and CLI surfaces, as an AutoCloseable result that removes its files.
 */
class MaterializeTest {
    private static final String T = "tenant-a";
    private static final String PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    private static final String CONFIG =
            "{\"caCert\": \"${secret:ca;type:TEXT_FILE}\", \"token\": \"${secret:token}\", \"again\": \"${secret:ca}\"}";

    @TempDir Path dir;
    Path files;
    SecretStorage store;

    @BeforeEach
    void open() {
        files = dir.resolve("materialized");
        store = open(SecretStorageOptions.builder().masterKey(Fixtures.newKey()).materializeDir(files));
    }

    private SecretStorage open(SecretStorageOptions.Builder options) {
        SecretStorage s = SecretStorage.open(dir.resolve("store-" + System.identityHashCode(options) + ".db"), options.build());
        s.create(T, "ca", SecretType.TEXT_FILE, PEM.getBytes(UTF_8), "");
        s.create(T, "token", SecretType.TEXT, "t0k3n".getBytes(UTF_8), "");
        return s;
    }

    @AfterEach
    void close() {
        store.close();
    }

    private static List<Path> listing(Path directory) throws IOException {
        if (!Files.exists(directory)) {
            return List.of();
        }
        try (Stream<Path> entries = Files.list(directory)) {
            return entries.toList();
        }
    }

    @Test
    void resolvesFilesToPrivatePathsAndRemovesThemOnClose() throws IOException {
        Path file;
        try (MaterializedDocument config = store.resolveMaterialized(T, CONFIG)) {
            assertEquals(1, config.files().size(), "one file per distinct TEXT_FILE secret");
            file = config.files().get(0);
            assertEquals(files, file.getParent());
            JsonNode json = Fixtures.json(config.document());
            assertEquals(file.toString(), json.get("caCert").asText());
            assertEquals(file.toString(), json.get("again").asText());
            assertEquals("t0k3n", json.get("token").asText(), "TEXT placeholders get their values");
            assertEquals(PEM, Files.readString(file, UTF_8));
            assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(file)));
            assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(files)));
            assertFalse(config.toString().contains("t0k3n"), "toString never shows the document");
            assertFalse(config.isClosed());
        }
        assertFalse(Files.exists(file), "closing the result removed its file");
        assertEquals(List.of(), listing(files));
    }

    @Test
    void resultsReferencingTheSameVersionShareTheFileUntilTheLastIsClosed() {
        MaterializedDocument first = store.resolveMaterialized(T, CONFIG);
        MaterializedDocument second = store.resolveTextMaterialized(T, "ca=${secret:ca;type:TEXT_FILE}");
        Path file = first.files().get(0);
        assertEquals(List.of(file), second.files());
        assertEquals("ca=" + file, second.document());
        first.close();
        first.close();
        assertTrue(first.isClosed());
        assertTrue(Files.exists(file), "the second result still holds the file");
        second.close();
        assertFalse(Files.exists(file));
        try (MaterializedDocument third = store.resolveMaterialized(T, CONFIG)) {
            assertTrue(Files.exists(third.files().get(0)), "a later result writes the file afresh");
        }
    }

    @Test
    void aNewVersionGetsItsOwnFile() throws IOException {
        try (MaterializedDocument v1 = store.resolveMaterialized(T, CONFIG)) {
            store.updateValue(T, "ca", "NEW PEM".getBytes(UTF_8));
            try (MaterializedDocument v2 = store.resolveMaterialized(T, CONFIG)) {
                assertFalse(v1.files().equals(v2.files()));
                assertEquals(PEM, Files.readString(v1.files().get(0), UTF_8));
                assertEquals("NEW PEM", Files.readString(v2.files().get(0), UTF_8));
            }
        }
    }

    @Test
    void aFailedResolveLeavesNoFileBehind() throws IOException {
        UnresolvedPlaceholderException e = assertThrows(UnresolvedPlaceholderException.class,
                () -> store.resolveMaterialized(T, "{\"ca\": \"${secret:ca}\", \"x\": \"${secret:Missing}\"}"));
        assertEquals("Missing", e.problems().get(0).name());
        assertEquals(List.of(), listing(files));
        assertThrows(InvalidArgumentException.class, () -> store.resolveMaterialized(T, "{not json"));
        assertThrows(MalformedPlaceholderException.class, () -> store.resolveTextMaterialized(T, "${secret:"));
    }

    @Test
    void aDocumentWithoutPlaceholdersIsReturnedAsIs() {
        String plain = "{\"host\": \"mqtt.local\"}";
        try (MaterializedDocument config = store.resolveMaterialized(T, plain)) {
            assertSame(plain, config.document());
            assertEquals(List.of(), config.files());
        }
    }

    @Test
    void closingTheStoreRemovesTheFilesOfResultsStillOpen() {
        MaterializedDocument config = store.resolveMaterialized(T, CONFIG);
        Path file = config.files().get(0);
        store.close();
        assertFalse(Files.exists(file), "the store's close removed it");
        config.close(); // after the store: nothing left to do, no exception
        assertTrue(config.isClosed());
    }

    @Test
    void keptFilesOutliveTheStoreButNotTheirResult() throws IOException {
        Path kept = dir.resolve("kept");
        MaterializedDocument config;
        try (SecretStorage s = open(SecretStorageOptions.builder().masterKey(Fixtures.newKey())
                .materializeDir(kept).keepMaterialized(true))) {
            assertEquals(kept, s.resolveMaterialized(T, CONFIG).files().get(0).getParent());
            config = s.resolveMaterialized(T, CONFIG);
        }
        assertEquals(PEM, Files.readString(config.files().get(0), UTF_8), "kept after the store closed");
        config.close();
        assertTrue(Files.exists(config.files().get(0)), "the store is gone: the kept file stays");
    }

    @Test
    void theDefaultDirectoryIsAFreshPrivateTemporaryOne() {
        try (SecretStorage s = open(SecretStorageOptions.builder().masterKey(Fixtures.newKey()))) {
            MaterializedDocument config = s.resolveMaterialized(T, CONFIG);
            Path file = config.files().get(0);
            assertTrue(file.getParent().getFileName().toString().startsWith("tbsecrets-"), file.toString());
            config.close();
            assertFalse(Files.exists(file));
        }
    }

    @Test
    void aDirectoryOthersCanEnterIsRefused() throws IOException {
        Path open = Files.createDirectory(dir.resolve("open"),
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwxr-xr-x")));
        Files.setPosixFilePermissions(open, PosixFilePermissions.fromString("rwxr-xr-x"));
        try (SecretStorage s = open(SecretStorageOptions.builder().masterKey(Fixtures.newKey()).materializeDir(open))) {
            InvalidArgumentException e = assertThrows(InvalidArgumentException.class,
                    () -> s.resolveMaterialized(T, CONFIG));
            assertTrue(e.getMessage().contains("owner only"), e.getMessage());
            assertEquals(List.of(), listing(open));
        }
    }

    @Test
    void sessionsNeedResolveAndShareTheStoresFiles() {
        try (SecretSession admin = store.session(Principal.tenantAdmin(T))) {
            assertThrows(PermissionDeniedException.class, () -> admin.resolveMaterialized(T, CONFIG));
        }
        SecretSession service = store.session(Principal.service(T));
        MaterializedDocument config = service.resolveMaterialized(T, CONFIG);
        Path file = config.files().get(0);
        service.close();
        assertTrue(Files.exists(file), "the files belong to the store, not the session");
        config.close();
        assertFalse(Files.exists(file), "closing the result after its session still removes the file");
    }
}
