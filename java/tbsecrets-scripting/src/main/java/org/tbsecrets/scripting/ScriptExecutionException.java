package org.tbsecrets.scripting;

/**
 * A script failed: it threw (a missing or denied secret included — the message names the secret,
 * never a value), did not compile, or was cut off by the host's timeout ({@link #timedOut()}).
 */
public final class ScriptExecutionException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** Whether the script was cut off by the timeout. */
    private final boolean timedOut;

    ScriptExecutionException(String message, Throwable cause, boolean timedOut) {
        super(message, cause);
        this.timedOut = timedOut;
    }

    /**
     * Whether the host's timeout cut the script off.
     *
     * @return true for a timeout
     */
    public boolean timedOut() {
        return timedOut;
    }
}
