package org.tbsecrets;

import java.util.List;

/** A secret with that name already exists in the tenant ({@link ErrorCode#ALREADY_EXISTS}). */
public class AlreadyExistsException extends SecretStorageException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message the detail, without any secret value
     * @param problems the offending placeholders, or {@code null} for none
     */
    public AlreadyExistsException(String message, List<PlaceholderProblem> problems) {
        super(ErrorCode.ALREADY_EXISTS, message, problems);
    }
}
