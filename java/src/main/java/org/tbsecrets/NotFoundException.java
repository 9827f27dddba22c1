package org.tbsecrets;

import java.util.List;

/** The tenant, secret or version does not exist ({@link ErrorCode#NOT_FOUND}). */
public class NotFoundException extends SecretStorageException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message the detail, without any secret value
     * @param problems the offending placeholders, or {@code null} for none
     */
    public NotFoundException(String message, List<PlaceholderProblem> problems) {
        super(ErrorCode.NOT_FOUND, message, problems);
    }
}
