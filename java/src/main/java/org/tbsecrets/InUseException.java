package org.tbsecrets;

import java.util.List;

/** The secret is referenced by tracked sources; delete it with force, or untrack them first ({@link ErrorCode#IN_USE}). */
public class InUseException extends SecretStorageException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message the detail, without any secret value
     * @param problems the offending placeholders, or {@code null} for none
     */
    public InUseException(String message, List<PlaceholderProblem> problems) {
        super(ErrorCode.IN_USE, message, problems);
    }
}
