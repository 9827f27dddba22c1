package org.tbsecrets;

import java.util.List;

/** The caller may not perform the operation ({@link ErrorCode#PERMISSION_DENIED}). */
public class PermissionDeniedException extends SecretStorageException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message the detail, without any secret value
     * @param problems the offending placeholders, or {@code null} for none
     */
    public PermissionDeniedException(String message, List<PlaceholderProblem> problems) {
        super(ErrorCode.PERMISSION_DENIED, message, problems);
    }
}
