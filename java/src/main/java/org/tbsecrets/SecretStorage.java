package org.tbsecrets;

import java.lang.ref.Cleaner;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Objects;
import org.tbsecrets.internal.Native;
import org.tbsecrets.internal.NativeHandle;

/**
 * An open tbsecrets store: encrypted, tenant-scoped, versioned secrets and placeholder
 * resolution, backed by the native library (one SQLite file, safe for several processes).
 *
 * <p>Its own methods (see {@link SecretOperations}) act as the host program that opened the
 * store: they are not checked against the access policy and are audited as {@code HOST}. Code
 * acting on behalf of a user or a service takes a {@link #session(Principal) session}, which is
 * checked and audited as its principal.
 *
 * <p>Thread-safe: share one instance. {@link #close()} is idempotent; a call after close throws
 * {@link IllegalStateException}, and a close racing calls in flight waits for them (new calls
 * fail with {@code IllegalStateException}) — it never crashes. Closing the store closes its
 * sessions. A store that is never closed is closed when it becomes unreachable.
 *
 * <p>Errors are {@link SecretStorageException} subclasses carrying the stable
 * {@link ErrorCode}; null arguments throw {@link NullPointerException}. Values are passed as
 * {@code byte[]} or {@code char[]} (UTF-8 for TEXT), which the caller can wipe afterwards; the
 * library keeps no plaintext copy.
 *
 * <pre>{@code
 * try (SecretStorage store = SecretStorage.open(Path.of("tbsecrets.db"), SecretStorageOptions.fromEnvironment())) {
 *     store.create(tenantId, "MyApiKey", SecretType.TEXT, "s3cr3t".toCharArray(), "partner API key");
 *     String key = store.getSecret(tenantId, "MyApiKey");
 *     try (SecretSession ruleEngine = store.session(Principal.service(tenantId))) {
 *         String config = ruleEngine.resolve(tenantId, "{\"token\": \"${secret:MyApiKey}\"}");
 *     }
 * }
 * }</pre>
 */
public final class SecretStorage extends SecretOperations {
    private final Path path;
    private final Cleaner.Cleanable cleanable;
    private final int maxTextChars;

    private SecretStorage(Path path, NativeHandle handle, int maxTextChars) {
        super(handle, maxTextChars);
        this.path = path;
        this.maxTextChars = maxTextChars;
        this.cleanable = CLEANER.register(this, handle);
    }

    /**
     * Opens (or, with {@link SecretStorageOptions#createIfMissing()}, creates) the store at a path.
     * Loads the native library on first use.
     *
     * @param store the store file
     * @param options the master key source, limits, access policy and audit settings
     * @return the open store
     * @throws WrongMasterKeyException if the key does not open the store (nothing is changed)
     * @throws KeyUnavailableException if the options' {@link KeyProvider} threw
     * @throws InvalidArgumentException if no master key is configured, both a key and a
     *     {@link KeyProvider} are, the key is malformed or
     *     all zero, the options' key was {@linkplain SecretStorageOptions#wipeMasterKey() wiped},
     *     or the policy JSON is invalid
     * @throws IntegrityException if the file is not a store or is corrupt
     * @throws StorageException if the file (or the audit log) cannot be opened or created
     */
    public static SecretStorage open(Path store, SecretStorageOptions options) {
        Objects.requireNonNull(store, "store");
        Objects.requireNonNull(options, "options");
        // The native code reads a temporary copy of the key, wiped as soon as the call returns.
        long pointer = options.useMasterKey(key -> Native.open(
                store.toString(),
                key,
                options.masterKeyFile() == null ? null : options.masterKeyFile().toString(),
                options.maxTextChars(),
                options.maxFileBytes(),
                options.maxVersions(),
                options.createIfMissing(),
                options.busyTimeout().toMillis(),
                options.policyJson(),
                options.auditEnabled(),
                options.auditLog() == null ? null : options.auditLog().toString(),
                options.auditListener(),
                options.materializeDir() == null ? null : options.materializeDir().toString(),
                options.keepMaterialized(),
                saturatedMillis(options.deletedRetention()),
                options.keyProvider(),
                options.keyProviderSpec(),
                options.keyCacheTtl() == null ? 0L : options.keyCacheTtl().toMillis()));
        return new SecretStorage(store, new NativeHandle(pointer, store.toString()), options.maxTextChars());
    }

    /** A duration in milliseconds, {@code Long.MAX_VALUE} when it does not fit. */
    private static long saturatedMillis(Duration duration) {
        try {
            return duration.toMillis();
        } catch (ArithmeticException tooLong) {
            return Long.MAX_VALUE;
        }
    }

    /**
     * The store file this instance was opened on.
     *
     * @return the path
     */
    public Path path() {
        return path;
    }

    /**
     * A session acting as a principal: every call is checked against the store's access policy
     * (a denied call throws {@link PermissionDeniedException}) and audited as the principal,
     * denied attempts included. Sessions are cheap, thread-safe and independent of each other;
     * close a session when done (closing the store closes it too).
     *
     * @param principal who acts
     * @return the session
     * @throws InvalidArgumentException if the principal's tenant id is not a valid tenant id
     * @throws IllegalStateException if this store is closed
     */
    public SecretSession session(Principal principal) {
        Objects.requireNonNull(principal, "principal");
        long stamp = handle.enter();
        try {
            NativeHandle session = handle.openSession(
                    principal.tenantId(), principal.role().number(), principal.id(),
                    "secret session of " + principal.role() + " in tenant " + principal.tenantId() + " on " + path);
            return new SecretSession(this, principal, session, maxTextChars);
        } finally {
            handle.exit(stamp);
        }
    }

    /**
     * A session acting as a principal restricted to an allow-list of secret names (least
     * privilege, e.g. for one rule node): on top of the access policy, every call on a name
     * that matches no entry throws {@link PermissionDeniedException} and is audited as a
     * denial; a resolve that references such a name fails with
     * {@link UnresolvedPlaceholderException} naming it (also audited as a denial). A restricted
     * session cannot enumerate: {@code list}, {@code unused}, {@code stale}, {@code untrack},
     * key rotation and the audit log calls throw {@link PermissionDeniedException}.
     *
     * <p>Entries are exact names or glob patterns: {@code *} matches any run of characters,
     * {@code ?} one character, over the whole name, case-sensitively. Each entry must be a valid
     * secret name (1 to 255 characters, no control characters, none of {@code { } ;}).
     *
     * @param principal who acts
     * @param allowedNames the entries; {@code null}: not restricted (same as
     *     {@link #session(Principal)}); an empty list: nothing is allowed
     * @return the session
     * @throws InvalidArgumentException if the tenant id or an entry is invalid, or there are more
     *     than 1024 entries
     * @throws NullPointerException if {@code principal} or an entry is {@code null}
     * @throws IllegalStateException if this store is closed
     */
    public SecretSession session(Principal principal, java.util.List<String> allowedNames) {
        Objects.requireNonNull(principal, "principal");
        if (allowedNames == null) {
            return session(principal);
        }
        java.util.List<String> entries = java.util.List.copyOf(allowedNames);
        long stamp = handle.enter();
        try {
            NativeHandle session = handle.openSession(
                    principal.tenantId(), principal.role().number(), principal.id(), entries,
                    "secret session of " + principal.role() + " in tenant " + principal.tenantId()
                            + " (allow-list of " + entries.size() + ") on " + path);
            return new SecretSession(this, principal, entries, session, maxTextChars);
        } finally {
            handle.exit(stamp);
        }
    }

    /**
     * Wipes the unwrapped data keys this store holds (and the values cached under them): the
     * next use of each key asks the key provider again, e.g. after a token was removed. Done on
     * its own when {@link SecretStorageOptions#keyCacheTtl()} runs out.
     *
     * @throws IllegalStateException if this store is closed
     */
    public void forgetKeys() {
        long stamp = handle.enter();
        try {
            Native.forgetKeys(handle.pointer());
        } finally {
            handle.exit(stamp);
        }
    }

    /**
     * Closes the store: new calls (of the store and of its sessions) fail with
     * {@link IllegalStateException}, calls in flight are waited for, usage counters and audit
     * records are flushed, materialised files are removed (unless
     * {@link SecretStorageOptions#keepMaterialized() kept}), the native handle and every open
     * session are freed. Calling it again does nothing.
     *
     * <p>Called from an {@link AuditListener} (inside a call of this store, on its thread), the
     * close takes effect once that call returns: the store counts as closed at once, and the rest
     * happens when the call returns (see {@link AuditListener}); it never deadlocks.
     *
     * @throws StorageException if the final flush of usage counters failed (the store is closed
     *     anyway)
     */
    @Override
    public void close() {
        cleanable.clean();
    }

    @Override
    public String toString() {
        return "SecretStorage[" + path + (isClosed() ? ", closed]" : "]");
    }
}
