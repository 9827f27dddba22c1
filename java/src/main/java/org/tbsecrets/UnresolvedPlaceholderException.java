package org.tbsecrets;

import java.util.List;

/** Placeholders could not be resolved; {@link #problems()} lists every one ({@link ErrorCode#UNRESOLVED}). */
public class UnresolvedPlaceholderException extends SecretStorageException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message the detail, without any secret value
     * @param problems the offending placeholders, or {@code null} for none
     */
    public UnresolvedPlaceholderException(String message, List<PlaceholderProblem> problems) {
        super(ErrorCode.UNRESOLVED, message, problems);
    }
}
