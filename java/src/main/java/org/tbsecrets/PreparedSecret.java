package org.tbsecrets;

/**
 * One secret of one tenant, prepared for repeated reads: what a rule node keeps for a secret it
 * reads on every message. The tenant id and name are checked and encoded once, when the handle
 * is made ({@link SecretOperations#prepareSecret}, {@link TenantSecrets#prepareSecret}); each
 * {@link #get()} then only hands them to the native code through the thread's call buffer, where
 * the value is decrypted afresh from the store's cache — a rotated or deleted secret is seen on
 * the next read. The handle holds no value and no key.
 *
 * <p>It acts as the store or session it came from: a session's policy is checked on every read
 * (a SERVICE session's handle on another tenant's secret is refused each time), and every read
 * is audited as a use, like {@link SecretOperations#getSecret}. Thread-safe. After {@link
 * #close()} — or once the store or session it came from is closed — every read throws {@link
 * IllegalStateException}; a handle never outlives native memory, as it owns none.
 *
 * <pre>{@code
 * PreparedSecret token = session.prepareSecret(tenantId, "partner-api-token"); // once
 * String value = token.get();                                                // per message
 * }</pre>
 */
public final class PreparedSecret implements AutoCloseable {
    private final SecretOperations store;
    private final String tenantId;
    private final String name;
    /** The ASCII bytes of the tenant id and the name, or null when they take the object path. */
    private final byte[] tenantAscii;
    private final byte[] nameAscii;
    private volatile boolean closed;

    PreparedSecret(SecretOperations store, String tenantId, String name) {
        this.store = store;
        this.tenantId = tenantId;
        this.name = name;
        byte[] tenant = SecretOperations.ascii(tenantId);
        byte[] secret = SecretOperations.ascii(name);
        boolean fast = SecretOperations.fitsArguments(tenant, secret);
        this.tenantAscii = fast ? tenant : null;
        this.nameAscii = fast ? secret : null;
    }

    /**
     * The tenant of the secret.
     *
     * @return the tenant id
     */
    public String tenantId() {
        return tenantId;
    }

    /**
     * The secret's name.
     *
     * @return the name
     */
    public String name() {
        return name;
    }

    /**
     * The current value of the TEXT secret.
     *
     * @return the value
     * @throws NotFoundException if there is no such secret (any more)
     * @throws TypeMismatchException if it is a TEXT_FILE secret (use {@link #getBytes})
     * @throws PermissionDeniedException if the session may not read it
     * @throws IllegalStateException if this handle, or the store or session it came from, is closed
     */
    public String get() {
        ensureOpen();
        if (tenantAscii != null) {
            return (String) store.throughBuffer(tenantAscii, nameAscii, tenantId, name, true);
        }
        return store.getSecret(tenantId, name);
    }

    /**
     * The current value of the secret, of either type, as a new array the caller wipes.
     *
     * @return the value's bytes
     * @throws NotFoundException if there is no such secret (any more)
     * @throws PermissionDeniedException if the session may not read it
     * @throws IllegalStateException if this handle, or the store or session it came from, is closed
     */
    public byte[] getBytes() {
        ensureOpen();
        if (tenantAscii != null) {
            return (byte[]) store.throughBuffer(tenantAscii, nameAscii, tenantId, name, false);
        }
        return store.getSecretBytes(tenantId, name);
    }

    /**
     * Whether this handle, or the store or session it came from, is closed.
     *
     * @return true if reads would throw {@link IllegalStateException}
     */
    public boolean isClosed() {
        return closed || store.isClosed();
    }

    /** Closes the handle: later reads throw {@link IllegalStateException}. Idempotent. */
    @Override
    public void close() {
        closed = true;
    }

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException(
                    "the prepared secret '" + name + "' of tenant '" + tenantId + "' is closed");
        }
    }

    @Override
    public String toString() {
        return "PreparedSecret[" + tenantId + "/" + name + (closed ? ", closed]" : "]");
    }
}
