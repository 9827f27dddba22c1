package org.tbsecrets;

import java.util.List;

/** The storage backend failed (I/O, locking, SQL) ({@link ErrorCode#STORAGE}). */
public class StorageException extends SecretStorageException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message the detail, without any secret value
     * @param problems the offending placeholders, or {@code null} for none
     */
    public StorageException(String message, List<PlaceholderProblem> problems) {
        super(ErrorCode.STORAGE, message, problems);
    }
}
