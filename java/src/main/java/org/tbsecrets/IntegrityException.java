package org.tbsecrets;

import java.util.List;

/** Stored data failed authentication: the store is corrupt or was tampered with ({@link ErrorCode#INTEGRITY}). */
public class IntegrityException extends SecretStorageException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message the detail, without any secret value
     * @param problems the offending placeholders, or {@code null} for none
     */
    public IntegrityException(String message, List<PlaceholderProblem> problems) {
        super(ErrorCode.INTEGRITY, message, problems);
    }
}
