package org.tbsecrets;

import java.util.List;

/**
 * The store is older than its anchor file or audit log: it was restored from an older copy or
 * rolled back ({@link ErrorCode#ROLLBACK_DETECTED}). The message names both counters. A deliberate
 * restore is accepted only explicitly, with {@code tbsecrets recover --accept-restore}.
 */
public class RollbackDetectedException extends SecretStorageException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message the detail, without any secret value
     * @param problems the offending placeholders, or {@code null} for none
     */
    public RollbackDetectedException(String message, List<PlaceholderProblem> problems) {
        super(ErrorCode.ROLLBACK_DETECTED, message, problems);
    }
}
