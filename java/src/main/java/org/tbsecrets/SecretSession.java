package org.tbsecrets;

import java.lang.ref.Cleaner;
import org.tbsecrets.internal.NativeHandle;

/**
 * A {@link SecretStorage} as seen by one {@link Principal} ({@link SecretStorage#session}): the
 * same operations with the same signatures (see {@link SecretOperations}), each checked against
 * the store's access policy — a call the principal may not make throws
 * {@link PermissionDeniedException} — and audited as the principal, denied attempts included.
 *
 * <pre>{@code
 * try (SecretSession admin = store.session(Principal.tenantAdmin(tenantId).withId(userId))) {
 *     admin.create(tenantId, "MyApiKey", SecretType.TEXT, value, "partner API key");
 *     admin.getSecret(tenantId, "MyApiKey");   // PermissionDeniedException: admins never read values
 * }
 * }</pre>
 *
 * <p>Thread-safe. It is guarded by its own lifecycle lock and by its store's: a call after either
 * is closed throws {@link IllegalStateException}, and closing either waits for the session's calls
 * in flight — it never crashes. {@link #close()} is idempotent and leaves the store open; a
 * session that is never closed is closed when it becomes unreachable, or with its store.
 */
public final class SecretSession extends SecretOperations {
    private final SecretStorage storage;
    private final Principal principal;
    private final java.util.List<String> allowedNames;
    private final Cleaner.Cleanable cleanable;

    SecretSession(SecretStorage storage, Principal principal, NativeHandle handle, int maxTextChars) {
        this(storage, principal, null, handle, maxTextChars);
    }

    SecretSession(SecretStorage storage, Principal principal, java.util.List<String> allowedNames,
            NativeHandle handle, int maxTextChars) {
        super(handle, maxTextChars);
        this.storage = storage;
        this.principal = principal;
        this.allowedNames = allowedNames;
        this.cleanable = CLEANER.register(this, handle);
    }

    /**
     * Who this session acts as.
     *
     * @return the principal
     */
    public Principal principal() {
        return principal;
    }

    /**
     * The allow-list this session is restricted to (see
     * {@link SecretStorage#session(Principal, java.util.List)}).
     *
     * @return the entries (an unmodifiable copy), or empty if the session is not restricted
     */
    public java.util.Optional<java.util.List<String>> allowedNames() {
        return java.util.Optional.ofNullable(allowedNames);
    }

    /**
     * The store this session acts on.
     *
     * @return the store
     */
    public SecretStorage storage() {
        return storage;
    }

    /**
     * Closes this session (not its store): new calls fail with {@link IllegalStateException},
     * calls in flight are waited for, and the native session handle is freed. Calling it again
     * does nothing.
     */
    @Override
    public void close() {
        cleanable.clean();
    }

    @Override
    public String toString() {
        return "SecretSession[" + principal.role() + " of " + principal.tenantId()
                + (principal.id() == null ? "" : " (" + principal.id() + ")")
                + ", " + storage.path() + (isClosed() ? ", closed]" : "]");
    }
}
