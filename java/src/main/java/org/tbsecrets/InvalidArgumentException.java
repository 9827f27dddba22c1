package org.tbsecrets;

import java.util.List;

/** An argument broke a validation rule; the message names the rule ({@link ErrorCode#INVALID_ARGUMENT}). */
public class InvalidArgumentException extends SecretStorageException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message the detail, without any secret value
     * @param problems the offending placeholders, or {@code null} for none
     */
    public InvalidArgumentException(String message, List<PlaceholderProblem> problems) {
        super(ErrorCode.INVALID_ARGUMENT, message, problems);
    }
}
