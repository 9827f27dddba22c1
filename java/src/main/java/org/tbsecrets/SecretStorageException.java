package org.tbsecrets;

import java.util.List;

/**
 * The base of every error a {@link SecretStorage} reports, carrying the stable
 * {@linkplain ErrorCode error code}. Each code has its own subclass, so callers can catch
 * exactly what they handle. Messages name tenants, secrets, placeholders and byte offsets, never
 * a secret value.
 *
 * <p>Serializable with every field: the code, the message and the {@link #problems()} survive
 * Java serialization of every subclass.
 *
 * <p>Unchecked: a secret store failure is usually a configuration problem the immediate caller
 * cannot repair. Use after {@link SecretStorage#close()} is reported as
 * {@link IllegalStateException} instead.
 */
public class SecretStorageException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** The code; serialized with the exception (enums serialize by name). */
    private final ErrorCode code;
    /**
     * The problems: an unmodifiable {@code List.copyOf} list of records, both serializable, so
     * an exception keeps its problems across Java serialization (e.g. RMI or a cluster cache).
     */
    private final List<PlaceholderProblem> problems;

    /**
     * Creates an exception.
     *
     * @param code the stable error code
     * @param message the detail, without any secret value
     * @param problems the offending placeholders, or {@code null} for none
     */
    public SecretStorageException(ErrorCode code, String message, List<PlaceholderProblem> problems) {
        super(message);
        this.code = code;
        this.problems = problems == null ? List.of() : List.copyOf(problems);
    }

    /**
     * The stable error code.
     *
     * @return the code
     */
    public ErrorCode code() {
        return code;
    }

    /**
     * The placeholders that failed to resolve, with names, byte offsets and reasons (for
     * {@link ErrorCode#UNRESOLVED}, {@link ErrorCode#MALFORMED_PLACEHOLDER} and
     * {@link ErrorCode#TYPE_MISMATCH} from a resolve call; empty otherwise).
     *
     * @return the problems, never {@code null}
     */
    public List<PlaceholderProblem> problems() {
        // A stream written by a version that did not serialize the problems restores null.
        return problems == null ? List.of() : problems;
    }

    /**
     * The exception of the right subclass for a code.
     *
     * @param code the error code
     * @param message the detail
     * @param problems the offending placeholders, or {@code null}
     * @return a new exception (an {@link IllegalStateException} for {@link ErrorCode#CLOSED})
     */
    public static RuntimeException of(ErrorCode code, String message, List<PlaceholderProblem> problems) {
        switch (code) {
            case INVALID_ARGUMENT:
                return new InvalidArgumentException(message, problems);
            case NOT_FOUND:
                return new NotFoundException(message, problems);
            case ALREADY_EXISTS:
                return new AlreadyExistsException(message, problems);
            case TYPE_MISMATCH:
                return new TypeMismatchException(message, problems);
            case PERMISSION_DENIED:
                return new PermissionDeniedException(message, problems);
            case IN_USE:
                return new InUseException(message, problems);
            case CONFLICT:
                return new ConflictException(message, problems);
            case MALFORMED_PLACEHOLDER:
                return new MalformedPlaceholderException(message, problems);
            case UNRESOLVED:
                return new UnresolvedPlaceholderException(message, problems);
            case WRONG_MASTER_KEY:
                return new WrongMasterKeyException(message, problems);
            case INTEGRITY:
                return new IntegrityException(message, problems);
            case STORAGE:
                return new StorageException(message, problems);
            case CLOSED:
                return new IllegalStateException(message);
            case ROLLBACK_DETECTED:
                return new RollbackDetectedException(message, problems);
            case KEY_UNAVAILABLE:
                return new KeyUnavailableException(message, problems);
            default:
                return new InternalException(message, problems);
        }
    }
}
