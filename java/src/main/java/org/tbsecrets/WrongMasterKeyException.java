package org.tbsecrets;

import java.util.List;

/** The master key does not open the store (nothing was changed) ({@link ErrorCode#WRONG_MASTER_KEY}). */
public class WrongMasterKeyException extends SecretStorageException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message the detail, without any secret value
     * @param problems the offending placeholders, or {@code null} for none
     */
    public WrongMasterKeyException(String message, List<PlaceholderProblem> problems) {
        super(ErrorCode.WRONG_MASTER_KEY, message, problems);
    }
}
