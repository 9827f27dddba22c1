package org.tbsecrets;

import java.util.List;

/**
 * The key provider holding the master key could not be used ({@link ErrorCode#KEY_UNAVAILABLE}):
 * a PKCS#11 module or token missing, a wrong PIN, a key program that failed or timed out, a host
 * {@code KeyProvider} that threw. Nothing was changed; retry once the provider is back.
 */
public class KeyUnavailableException extends SecretStorageException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message the detail, without any secret value
     * @param problems the offending placeholders, or {@code null} for none
     */
    public KeyUnavailableException(String message, List<PlaceholderProblem> problems) {
        super(ErrorCode.KEY_UNAVAILABLE, message, problems);
    }
}
