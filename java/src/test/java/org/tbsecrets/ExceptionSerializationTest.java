package org.tbsecrets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Issue 19, item 3: every exception keeps every field across Java serialization. */
class ExceptionSerializationTest {
    private static final List<PlaceholderProblem> PROBLEMS = List.of(
            new PlaceholderProblem(ErrorCode.NOT_FOUND, "MissingKey", 12, "no such secret"),
            new PlaceholderProblem(ErrorCode.TYPE_MISMATCH, "ca", 40, "is TEXT_FILE"));

    @TempDir Path dir;

    @SuppressWarnings("unchecked")
    static <T> T roundTrip(T object) {
        try {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
                out.writeObject(object);
            }
            try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
                return (T) in.readObject();
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (ClassNotFoundException e) {
            throw new AssertionError(e);
        }
    }

    /** One round trip per subclass (every code but OK, and CLOSED, which is an IllegalStateException). */
    @ParameterizedTest
    @EnumSource(value = ErrorCode.class, mode = EnumSource.Mode.EXCLUDE, names = {"OK", "CLOSED"})
    void everySubclassKeepsCodeMessageAndProblems(ErrorCode code) {
        SecretStorageException original = (SecretStorageException)
                SecretStorageException.of(code, "detail of " + code, PROBLEMS);
        SecretStorageException copy = roundTrip(original);
        assertNotSame(original, copy);
        assertSame(original.getClass(), copy.getClass());
        assertEquals(code, copy.code());
        assertEquals("detail of " + code, copy.getMessage());
        assertEquals(PROBLEMS, copy.problems());
    }

    @Test
    void anExceptionWithoutProblemsKeepsAnEmptyList() {
        SecretStorageException copy = roundTrip(new NotFoundException("gone", null));
        assertEquals(List.of(), copy.problems());
        assertEquals(ErrorCode.NOT_FOUND, copy.code());
    }

    @Test
    void anUnresolvedPlaceholderExceptionFromTheStoreKeepsItsProblems() {
        try (SecretStorage store = Fixtures.open(dir)) {
            UnresolvedPlaceholderException thrown = org.junit.jupiter.api.Assertions.assertThrows(
                    UnresolvedPlaceholderException.class,
                    () -> store.resolve("tenant-a", "{\"a\": \"${secret:Nope}\", \"b\": \"${secret:AlsoNope}\"}"));
            assertEquals(2, thrown.problems().size());
            SecretStorageException copy = roundTrip(thrown);
            assertInstanceOf(UnresolvedPlaceholderException.class, copy);
            assertEquals(ErrorCode.UNRESOLVED, copy.code());
            assertEquals(thrown.getMessage(), copy.getMessage());
            assertEquals(thrown.problems(), copy.problems());
            assertFalse(copy.problems().isEmpty());
            assertEquals("Nope", copy.problems().get(0).name());
        }
    }

    @Test
    void placeholderProblemIsSerializable() {
        assertEquals(PROBLEMS.get(0), roundTrip(PROBLEMS.get(0)));
    }
}
