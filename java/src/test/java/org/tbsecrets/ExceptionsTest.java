package org.tbsecrets;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;
import org.tbsecrets.internal.Native;

/** Every exception type, raised by the native library where the core can produce it. */
class ExceptionsTest {
    private static final String T = "tenant-a";

    @TempDir Path dir;
    SecretStorage store;

    @BeforeEach
    void open() {
        store = Fixtures.open(dir);
        store.create(T, "text", SecretType.TEXT, "v".getBytes(UTF_8), "");
        store.create(T, "pem", SecretType.TEXT_FILE, "-----BEGIN X-----\n".getBytes(UTF_8), "");
    }

    @AfterEach
    void close() {
        store.close();
    }

    static <E extends SecretStorageException> E expect(Class<E> type, ErrorCode code, Executable call) {
        E e = assertThrows(type, call);
        assertEquals(code, e.code(), e.toString());
        assertFalse(e.getMessage().isBlank());
        return e;
    }

    @Test
    void invalidArgument() {
        var e = expect(InvalidArgumentException.class, ErrorCode.INVALID_ARGUMENT,
                () -> store.create(T, "a{b", SecretType.TEXT, new byte[1], ""));
        assertTrue(e.getMessage().contains("reserved"), e.getMessage());
        expect(InvalidArgumentException.class, ErrorCode.INVALID_ARGUMENT,
                () -> store.create("", "n", SecretType.TEXT, new byte[1], ""));
        expect(InvalidArgumentException.class, ErrorCode.INVALID_ARGUMENT,
                () -> store.create(T, "bad-utf8", SecretType.TEXT, new byte[] {(byte) 0xff}, ""));
        expect(InvalidArgumentException.class, ErrorCode.INVALID_ARGUMENT,
                () -> store.resolve(T, "{not json"));
        expect(InvalidArgumentException.class, ErrorCode.INVALID_ARGUMENT,
                () -> store.resolveBytes(T, new byte[] {'"', (byte) 0xc3, '"'}));
        expect(InvalidArgumentException.class, ErrorCode.INVALID_ARGUMENT,
                () -> store.list(T, null, -1, 0));
        expect(InvalidArgumentException.class, ErrorCode.INVALID_ARGUMENT,
                () -> store.updateValue(T, "text", new byte[1], -5));
        expect(InvalidArgumentException.class, ErrorCode.INVALID_ARGUMENT,
                () -> store.trackReferences(T, "", "{}"));
        assertThrows(NullPointerException.class, () -> store.getSecret(T, null));
    }

    @Test
    void notFound() {
        var e = expect(NotFoundException.class, ErrorCode.NOT_FOUND, () -> store.getSecret(T, "nope"));
        assertTrue(e.getMessage().contains("'nope'"), e.getMessage());
        expect(NotFoundException.class, ErrorCode.NOT_FOUND, () -> store.getSecret("other", "text"));
        expect(NotFoundException.class, ErrorCode.NOT_FOUND, () -> store.rollback(T, "text", 7));
        expect(NotFoundException.class, ErrorCode.NOT_FOUND, () -> store.delete(T, "nope"));
    }

    @Test
    void alreadyExists() {
        expect(AlreadyExistsException.class, ErrorCode.ALREADY_EXISTS,
                () -> store.create(T, "text", SecretType.TEXT, new byte[1], ""));
    }

    @Test
    void typeMismatch() {
        var e = expect(TypeMismatchException.class, ErrorCode.TYPE_MISMATCH, () -> store.getSecret(T, "pem"));
        assertTrue(e.getMessage().contains("getSecretBytes"), e.getMessage());
        var r = expect(TypeMismatchException.class, ErrorCode.TYPE_MISMATCH,
                () -> store.resolveText(T, "x=${secret:pem;type:TEXT}"));
        assertEquals(List.of(new PlaceholderProblem(ErrorCode.TYPE_MISMATCH, "pem", 2, r.problems().get(0).reason())),
                r.problems());
    }

    @Test
    void inUse() {
        store.trackReferences(T, "integration:7", "{\"h\": \"${secret:text}\"}");
        var e = expect(InUseException.class, ErrorCode.IN_USE, () -> store.delete(T, "text"));
        assertTrue(e.getMessage().contains("integration:7"), e.getMessage());
    }

    @Test
    void conflict() {
        expect(ConflictException.class, ErrorCode.CONFLICT, () -> store.updateValue(T, "text", "w".getBytes(UTF_8), 9));
        assertEquals("v", store.getSecret(T, "text"));
    }

    @Test
    void malformedPlaceholder() {
        var e = expect(MalformedPlaceholderException.class, ErrorCode.MALFORMED_PLACEHOLDER,
                () -> store.resolveText(T, "ok ${secret:text} bad ${secret:oops"));
        assertEquals(1, e.problems().size());
        assertEquals(ErrorCode.MALFORMED_PLACEHOLDER, e.problems().get(0).code());
        assertEquals(22, e.problems().get(0).offset());
        expect(MalformedPlaceholderException.class, ErrorCode.MALFORMED_PLACEHOLDER,
                () -> store.references("${secret:a;type:BLOB}"));
    }

    @Test
    void unresolvedListsEveryPlaceholderAndNoValue() {
        String doc = "{\"a\": \"${secret:missing-1}\", \"b\": \"${secret:text}\", \"c\": \"${secret:missing-2}\"}";
        var e = expect(UnresolvedPlaceholderException.class, ErrorCode.UNRESOLVED, () -> store.resolve(T, doc));
        assertEquals(List.of("missing-1", "missing-2"), e.problems().stream().map(PlaceholderProblem::name).toList());
        assertEquals(List.of((long) doc.indexOf("${secret:missing-1"), (long) doc.indexOf("${secret:missing-2")),
                e.problems().stream().map(PlaceholderProblem::offset).toList());
        assertTrue(e.problems().stream().allMatch(p -> p.code() == ErrorCode.NOT_FOUND));
        assertFalse(e.getMessage().contains("\"v\""), "no value in the message");
    }

    @Test
    void wrongMasterKey() {
        store.close();
        var e = expect(WrongMasterKeyException.class, ErrorCode.WRONG_MASTER_KEY,
                () -> SecretStorage.open(dir.resolve("store.db"), SecretStorageOptions.withMasterKey(Fixtures.newKey())));
        assertFalse(e.getMessage().isBlank());
    }

    @Test
    void integrity() throws Exception {
        Path notAStore = dir.resolve("not-a-store.db");
        Files.write(notAStore, "this is not an SQLite database at all, just text...".repeat(100).getBytes(UTF_8));
        expect(IntegrityException.class, ErrorCode.INTEGRITY,
                () -> SecretStorage.open(notAStore, SecretStorageOptions.withMasterKey(Fixtures.newKey())));
    }

    @Test
    void storage() {
        expect(StorageException.class, ErrorCode.STORAGE,
                () -> SecretStorage.open(dir.resolve("no/such/dir/store.db"), SecretStorageOptions.withMasterKey(Fixtures.newKey())));
    }

    @Test
    void panicBecomesInternalExceptionAndTheJvmLivesOn() {
        var e = expect(InternalException.class, ErrorCode.INTERNAL, Native::panicForTest);
        assertTrue(e.getMessage().contains("deliberate panic"), e.getMessage());
        assertEquals("v", store.getSecret(T, "text"), "the library still works after a panic");
    }

    @Test
    void closedIsIllegalState() {
        store.close();
        assertThrows(IllegalStateException.class, () -> store.info(T, "text"));
        assertThrows(IllegalStateException.class, () -> store.resolve(T, "{}"));
        assertThrows(IllegalStateException.class, () -> store.references("{}"));
    }

    @Test
    void everyCodeMapsToItsOwnException() {
        List<Class<?>> expected = List.of(
                InternalException.class, // OK is never thrown: an unknown number maps to INTERNAL's class
                InvalidArgumentException.class,
                NotFoundException.class,
                AlreadyExistsException.class,
                TypeMismatchException.class,
                PermissionDeniedException.class,
                InUseException.class,
                ConflictException.class,
                MalformedPlaceholderException.class,
                UnresolvedPlaceholderException.class,
                WrongMasterKeyException.class,
                IntegrityException.class,
                StorageException.class,
                IllegalStateException.class,
                InternalException.class,
                RollbackDetectedException.class,
                KeyUnavailableException.class);
        for (ErrorCode code : ErrorCode.values()) {
            RuntimeException e = SecretStorageException.of(code, "m", null);
            assertInstanceOf(expected.get(code.number()), e, code.name());
            assertEquals("m", e.getMessage());
            if (e instanceof SecretStorageException s && code != ErrorCode.OK) {
                assertEquals(code, s.code());
                assertEquals(List.of(), s.problems());
            }
        }
        var problem = new PlaceholderProblem(ErrorCode.NOT_FOUND, "n", 3, "no such secret");
        var e = new PermissionDeniedException("denied", List.of(problem));
        assertEquals(ErrorCode.PERMISSION_DENIED, e.code());
        assertEquals(List.of(problem), e.problems());
        assertInstanceOf(SecretStorageException.class, e);
    }
}
