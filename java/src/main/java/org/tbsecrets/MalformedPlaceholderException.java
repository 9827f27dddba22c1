package org.tbsecrets;

import java.util.List;

/** A document holds a malformed placeholder; {@link #problems()} lists every one ({@link ErrorCode#MALFORMED_PLACEHOLDER}). */
public class MalformedPlaceholderException extends SecretStorageException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message the detail, without any secret value
     * @param problems the offending placeholders, or {@code null} for none
     */
    public MalformedPlaceholderException(String message, List<PlaceholderProblem> problems) {
        super(ErrorCode.MALFORMED_PLACEHOLDER, message, problems);
    }
}
