package org.tbsecrets;

/**
 * The stable error codes shared by every tbsecrets surface (Rust, C, Java, CLI). Numbers are
 * never reused; {@link #number()} is the same number the C ABI returns and the CLI exits with.
 */
public enum ErrorCode {
    /** Success (never carried by an exception). */
    OK(0),
    /** An argument broke a validation rule; the message names the rule. */
    INVALID_ARGUMENT(1),
    /** The tenant, secret or version does not exist. */
    NOT_FOUND(2),
    /** A secret with that name already exists in the tenant. */
    ALREADY_EXISTS(3),
    /** The secret exists but has another type than the one requested. */
    TYPE_MISMATCH(4),
    /** The principal may not perform the operation. */
    PERMISSION_DENIED(5),
    /** The secret is referenced by sources and cannot be deleted without force. */
    IN_USE(6),
    /** A check-and-set version did not match the current version. */
    CONFLICT(7),
    /** A <code>${secret:</code> placeholder is not well formed. */
    MALFORMED_PLACEHOLDER(8),
    /** One or more placeholders could not be resolved. */
    UNRESOLVED(9),
    /** The master key does not open this store. */
    WRONG_MASTER_KEY(10),
    /** Stored data failed authentication: corrupt or tampered. */
    INTEGRITY(11),
    /** The storage backend failed (I/O, locking, SQL). */
    STORAGE(12),
    /** The store handle has been closed (reported in Java as {@link IllegalStateException}). */
    CLOSED(13),
    /** An internal error: a bug, or a caught panic of the native code. */
    INTERNAL(14),
    /**
     * The store is older than its anchor file or audit log: restored from an older copy or rolled
     * back. The message names both counters; accept a deliberate restore with
     * {@code tbsecrets recover --accept-restore}.
     */
    ROLLBACK_DETECTED(15),
    /**
     * The key provider holding the master key could not be used: a PKCS#11 module or token
     * missing, a wrong PIN, a key program that failed or timed out, a host {@code KeyProvider}
     * that threw. Nothing was changed.
     */
    KEY_UNAVAILABLE(16);

    private static final ErrorCode[] BY_NUMBER = values();

    private final int number;

    ErrorCode(int number) {
        this.number = number;
    }

    /**
     * The stable number of this code.
     *
     * @return the number, as in docs/ARCHITECTURE.md ("Errors")
     */
    public int number() {
        return number;
    }

    /**
     * The code with a given number.
     *
     * @param number a stable error number
     * @return its code, or {@link #INTERNAL} for a number this version does not know
     */
    public static ErrorCode of(int number) {
        return number >= 0 && number < BY_NUMBER.length ? BY_NUMBER[number] : INTERNAL;
    }
}
