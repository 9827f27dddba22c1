package org.tbsecrets;

import java.util.List;

/** An internal error of the native library: a bug, or a caught panic ({@link ErrorCode#INTERNAL}). */
public class InternalException extends SecretStorageException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message the detail, without any secret value
     * @param problems the offending placeholders, or {@code null} for none
     */
    public InternalException(String message, List<PlaceholderProblem> problems) {
        super(ErrorCode.INTERNAL, message, problems);
    }
}
