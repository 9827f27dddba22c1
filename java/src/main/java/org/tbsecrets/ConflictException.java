package org.tbsecrets;

import java.util.List;

/** A check-and-set write expected another current version ({@link ErrorCode#CONFLICT}). */
public class ConflictException extends SecretStorageException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message the detail, without any secret value
     * @param problems the offending placeholders, or {@code null} for none
     */
    public ConflictException(String message, List<PlaceholderProblem> problems) {
        super(ErrorCode.CONFLICT, message, problems);
    }
}
