package org.tbsecrets;

import java.util.List;

/** The secret has another type than the one asked for ({@link ErrorCode#TYPE_MISMATCH}). */
public class TypeMismatchException extends SecretStorageException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message the detail, without any secret value
     * @param problems the offending placeholders, or {@code null} for none
     */
    public TypeMismatchException(String message, List<PlaceholderProblem> problems) {
        super(ErrorCode.TYPE_MISMATCH, message, problems);
    }
}
