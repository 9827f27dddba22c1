package org.tbsecrets.internal;

import java.nio.ByteBuffer;
import java.util.List;
import org.tbsecrets.AuditListener;
import org.tbsecrets.ErrorCode;
import org.tbsecrets.PlaceholderProblem;
import org.tbsecrets.SecretStorageException;

/**
 * The native methods of the tbsecrets library ({@code src/jni} in the Rust crate). Internal: use
 * {@link org.tbsecrets.SecretStorage}. Loading this class loads the library.
 *
 * <p>Every method taking a {@code handle} must be called while the handle's
 * {@link NativeHandle} read lock is held. Errors arrive as {@link SecretStorageException}
 * subclasses built by {@link #newException}. Metadata results are {@link Wire}-encoded; a
 * resolve result of {@code null} means "unchanged".
 */
public final class Native {
    static {
        NativeLoader.load();
    }

    private Native() {}

    /**
     * Opens a store.
     *
     * @param path the store file
     * @param masterKey 32 raw bytes, or {@code null}
     * @param keyFile a base64 key file, or {@code null}
     * @param maxTextChars TEXT limit
     * @param maxFileBytes TEXT_FILE limit
     * @param maxVersions versions kept
     * @param createIfMissing create a missing store
     * @param busyTimeoutMillis writer lock wait
     * @param policyJson the access policy as JSON, or {@code null} for the default
     * @param auditEnabled write audit records at all
     * @param auditPath the audit log file, or {@code null} for the default beside the store
     * @param auditListener receives every audit record, or {@code null}
     * @param materializeDir the directory of materialised TEXT_FILE values, or {@code null} for a
     *     fresh private temporary one
     * @param keepMaterialized keep materialised files when the store closes
     * @param deletedRetentionMillis how long deleted secrets stay recoverable, 0: not at all
     * @param keyProvider the host key provider holding the master key, or {@code null}
     * @param keyProviderSpec a key provider spec, or {@code null}
     * @param keyCacheTtlMillis the data-key cache lifetime in milliseconds, or 0 for the store's
     * @return the handle (acting as the host)
     */
    public static native long open(
            String path,
            byte[] masterKey,
            String keyFile,
            int maxTextChars,
            int maxFileBytes,
            int maxVersions,
            boolean createIfMissing,
            long busyTimeoutMillis,
            String policyJson,
            boolean auditEnabled,
            String auditPath,
            AuditListener auditListener,
            String materializeDir,
            boolean keepMaterialized,
            long deletedRetentionMillis,
            org.tbsecrets.KeyProvider keyProvider,
            String keyProviderSpec,
            long keyCacheTtlMillis);

    /**
     * Opens a session handle acting as a principal over a store handle.
     *
     * @param handle the store handle
     * @param tenant the principal's tenant id
     * @param role the principal's {@link org.tbsecrets.Role#number()}
     * @param id the principal's id, or {@code null}
     * @return the session handle
     */
    public static native long openSession(long handle, String tenant, int role, String id);

    /**
     * Opens a session handle acting as a principal restricted to an allow-list of names.
     *
     * @param handle the store handle
     * @param tenant the principal's tenant id
     * @param role the principal's {@link org.tbsecrets.Role#number()}
     * @param id the principal's id, or {@code null}
     * @param count how many entries {@code names} holds
     * @param names the entries (exact names and {@code *}/{@code ?} patterns) joined by {@code '\n'}
     * @return the session handle
     */
    public static native long openSessionAllowed(long handle, String tenant, int role, String id,
            int count, String names);

    /**
     * Frees a session handle (under its write lock); the store stays open.
     *
     * @param handle the session handle
     */
    public static native void closeSession(long handle);

    /**
     * Closes a store and frees its handle (under the write lock).
     *
     * @param handle the handle
     */
    public static native void close(long handle);

    /**
     * Creates a secret.
     *
     * @param handle the handle
     * @param tenant tenant id
     * @param name secret name
     * @param type {@link org.tbsecrets.SecretType#number()}
     * @param value the value's bytes
     * @param description description
     * @return wire-encoded SecretInfo
     */
    public static native byte[] create(
            long handle, String tenant, String name, int type, byte[] value, String description);

    /**
     * Writes a new version.
     *
     * @param handle the handle
     * @param tenant tenant id
     * @param name secret name
     * @param value the value's bytes
     * @param expectedVersion the check-and-set version, or -1
     * @return wire-encoded SecretInfo
     */
    public static native byte[] updateValue(
            long handle, String tenant, String name, byte[] value, long expectedVersion);

    /**
     * Changes a description.
     *
     * @param handle the handle
     * @param tenant tenant id
     * @param name secret name
     * @param description the new description
     * @return wire-encoded SecretInfo
     */
    public static native byte[] updateDescription(long handle, String tenant, String name, String description);

    /**
     * Deletes a secret.
     *
     * @param handle the handle
     * @param tenant tenant id
     * @param name secret name
     * @param force delete even while referenced
     */
    public static native void delete(long handle, String tenant, String name, boolean force);

    /**
     * Makes a deleted secret live again.
     *
     * @param handle the handle
     * @param tenant tenant id
     * @param name secret name
     */
    public static native void undelete(long handle, String tenant, String name);

    /**
     * Erases a secret, live or deleted, and all its versions for good.
     *
     * @param handle the handle
     * @param tenant tenant id
     * @param name secret name
     */
    public static native void destroy(long handle, String tenant, String name);

    /**
     * Metadata of one secret.
     *
     * @param handle the handle
     * @param tenant tenant id
     * @param name secret name
     * @return wire-encoded SecretInfo
     */
    public static native byte[] info(long handle, String tenant, String name);

    /**
     * A page of secrets.
     *
     * @param handle the handle
     * @param tenant tenant id
     * @param nameContains name filter, or {@code null}
     * @param after the cursor: only names after it, or {@code null}
     * @param offset entries to skip
     * @param limit page size, 0 for all
     * @param deleted list the deleted secrets instead of the live ones
     * @return wire-encoded page
     */
    public static native byte[] list(long handle, String tenant, String nameContains, String after, int offset,
            int limit, boolean deleted);

    /**
     * Kept versions.
     *
     * @param handle the handle
     * @param tenant tenant id
     * @param name secret name
     * @return wire-encoded versions
     */
    public static native byte[] history(long handle, String tenant, String name);

    /**
     * Rolls back to a kept version.
     *
     * @param handle the handle
     * @param tenant tenant id
     * @param name secret name
     * @param version the kept version
     * @return wire-encoded SecretInfo
     */
    public static native byte[] rollback(long handle, String tenant, String name, long version);

    /**
     * The value of a TEXT secret.
     *
     * @param handle the handle
     * @param tenant tenant id
     * @param name secret name
     * @return the value
     */
    public static native String getSecret(long handle, String tenant, String name);

    /**
     * The hot path of {@link #getSecret}: reads the ASCII tenant id and name from a thread's call
     * buffer and writes the TEXT value over them (an {@code int} length in native byte order, then
     * the UTF-8 bytes).
     *
     * @param handle the handle
     * @param address the call buffer's address
     * @param capacity its size
     * @param tenantLength bytes of the tenant id at offset 0
     * @param nameLength bytes of the name after it
     * @return {@code null} when the value is in the buffer, else the value itself (too long for it)
     */
    public static native String getSecretInto(
            long handle, long address, int capacity, int tenantLength, int nameLength);

    /**
     * {@link #getSecretInto} for a secret of either type: the value's bytes are written to the
     * buffer the same way; a value too long for it is returned as a new {@code byte[]}.
     *
     * @param handle the handle
     * @param address the call buffer's address
     * @param capacity its size
     * @param tenantLength bytes of the tenant id at offset 0
     * @param nameLength bytes of the name after it
     * @return {@code null} when the value is in the buffer, else the value itself (too long for it)
     */
    public static native byte[] getBytesInto(
            long handle, long address, int capacity, int tenantLength, int nameLength);

    /**
     * The address of a direct buffer.
     *
     * @param buffer a direct buffer
     * @return its address
     */
    public static native long directBufferAddress(ByteBuffer buffer);

    /**
     * The value of a secret of either type.
     *
     * @param handle the handle
     * @param tenant tenant id
     * @param name secret name
     * @return the value's bytes
     */
    public static native byte[] getSecretBytes(long handle, String tenant, String name);

    /**
     * Resolves a UTF-8 document held in a byte array.
     *
     * @param handle the handle
     * @param tenant tenant id
     * @param doc the array
     * @param offset start of the document
     * @param length its length in bytes
     * @param json JSON (string values only) or text
     * @return the resolved UTF-8 document, or {@code null} when unchanged
     */
    public static native byte[] resolve(
            long handle, String tenant, byte[] doc, int offset, int length, boolean json);

    /**
     * Resolves a UTF-8 YAML document held in an array: every scalar value (never a key), written
     * back by YAML's quoting rules.
     *
     * @param handle the handle
     * @param tenant tenant id
     * @param doc the array
     * @param offset start of the document
     * @param length its length in bytes
     * @return the resolved UTF-8 document, or {@code null} when unchanged
     */
    public static native byte[] resolveYaml(long handle, String tenant, byte[] doc, int offset, int length);

    /**
     * Resolves a UTF-8 document, filling per-message names from message metadata.
     *
     * @param handle the store or session handle
     * @param tenant the tenant
     * @param doc the document
     * @param offset where it starts in {@code doc}
     * @param len its length in bytes
     * @param json whether it is JSON (else text)
     * @param keys the metadata keys (none null)
     * @param values the metadata values, in the order of {@code keys} (none null)
     * @return the resolved UTF-8 document, or {@code null} when unchanged
     */
    public static native byte[] resolveVars(long handle, String tenant, byte[] doc, int offset, int len,
            boolean json, String[] keys, String[] values);

    /**
     * Resolves a UTF-8 document held in a direct buffer, read in place.
     *
     * @param handle the handle
     * @param tenant tenant id
     * @param doc the direct buffer
     * @param offset start of the document
     * @param length its length in bytes
     * @param json JSON (string values only) or text
     * @return the resolved UTF-8 document, or {@code null} when unchanged
     */
    public static native byte[] resolveDirect(
            long handle, String tenant, ByteBuffer doc, int offset, int length, boolean json);

    /**
     * Resolves a UTF-8 document held in a direct buffer, read in place, into another direct
     * buffer that must not overlap it.
     *
     * @param handle the handle
     * @param tenant tenant id
     * @param doc the document's direct buffer
     * @param offset start of the document
     * @param length its length in bytes
     * @param json JSON (string values only) or text
     * @param out the output's direct buffer
     * @param outOffset where the output starts
     * @param outLength the room for it
     * @return the resolved length: the document is in {@code out} when it is at most
     *     {@code outLength}, else nothing of it is
     */
    public static native long resolveDirectInto(long handle, String tenant, ByteBuffer doc, int offset,
            int length, boolean json, ByteBuffer out, int outOffset, int outLength);

    /**
     * Resolves a UTF-8 document held in a byte array with TEXT_FILE values materialised as
     * private files.
     *
     * @param handle the handle
     * @param tenant tenant id
     * @param doc the array
     * @param offset start of the document
     * @param length its length in bytes
     * @param json JSON (string values only) or text
     * @return the wire-encoded result (see {@link Wire#materialized}); wipe it after decoding
     */
    public static native byte[] resolveMaterialized(
            long handle, String tenant, byte[] doc, int offset, int length, boolean json);

    /**
     * Gives back the files of a {@link #resolveMaterialized} result: a file no other result
     * holds is removed.
     *
     * @param handle a handle of the store
     * @param paths the paths, separated by NUL characters
     */
    public static native void releaseMaterialized(long handle, String paths);

    /**
     * References of a UTF-8 document.
     *
     * @param doc the array
     * @param offset start of the document
     * @param length its length
     * @return wire-encoded references
     */
    public static native byte[] references(byte[] doc, int offset, int length);

    /**
     * Records a source's references.
     *
     * @param handle the handle
     * @param tenant tenant id
     * @param sourceId the source
     * @param doc the array
     * @param offset start of the document
     * @param length its length
     * @return wire-encoded references
     */
    public static native byte[] trackReferences(
            long handle, String tenant, String sourceId, byte[] doc, int offset, int length);

    /**
     * Forgets a source's references.
     *
     * @param handle the handle
     * @param tenant tenant id
     * @param sourceId the source
     * @return how many were removed
     */
    public static native int untrack(long handle, String tenant, String sourceId);

    /**
     * Sources referencing a secret.
     *
     * @param handle the handle
     * @param tenant tenant id
     * @param name secret name
     * @return wire-encoded usages
     */
    public static native byte[] whereUsed(long handle, String tenant, String name);

    /**
     * Writes batched usage counters.
     *
     * @param handle the handle
     */
    public static native void flushUsage(long handle);

    /**
     * Secrets not used for an age.
     *
     * @param handle the handle
     * @param tenant tenant id
     * @param ageMillis the age in milliseconds
     * @return wire-encoded list of SecretInfo
     */
    public static native byte[] unused(long handle, String tenant, long ageMillis);

    /**
     * Secrets whose value is at least an age old.
     *
     * @param handle the handle
     * @param tenant tenant id
     * @param ageMillis the age in milliseconds
     * @return wire-encoded list of SecretInfo
     */
    public static native byte[] stale(long handle, String tenant, long ageMillis);

    /**
     * Replaces the master key.
     *
     * @param handle the handle
     * @param newKey 32 raw bytes
     * @return wire-encoded RotationReport
     */
    public static native byte[] rotateMasterKey(long handle, byte[] newKey);

    /**
     * Moves the master key to a host key provider.
     *
     * @param handle the handle
     * @param keyProvider the provider (non-null)
     * @return wire-encoded RotationReport
     */
    public static native byte[] rotateKeyProvider(long handle, org.tbsecrets.KeyProvider keyProvider);

    /**
     * Moves the master key to the key provider a spec names.
     *
     * @param handle the handle
     * @param spec the provider spec
     * @return wire-encoded RotationReport
     */
    public static native byte[] rotateKeyProviderSpec(long handle, String spec);

    /**
     * Wipes the store's unwrapped data keys.
     *
     * @param handle the store's own handle
     */
    public static native void forgetKeys(long handle);

    /**
     * Gives a tenant a new data key.
     *
     * @param handle the handle
     * @param tenant tenant id
     * @return wire-encoded RotationReport
     */
    public static native byte[] rotateTenantKey(long handle, String tenant);

    /**
     * What a master-key rotation would do (a dry run).
     *
     * @param handle the handle
     * @return wire-encoded RotationPlan
     */
    public static native byte[] planMasterKeyRotation(long handle);

    /**
     * What a tenant-key rotation would do (a dry run).
     *
     * @param handle the handle
     * @param tenant tenant id
     * @return wire-encoded RotationPlan
     */
    public static native byte[] planTenantKeyRotation(long handle, String tenant);

    /**
     * Verifies an audit log.
     *
     * @param handle the handle
     * @param path the log file, or {@code null} for the store's own
     * @return wire-encoded AuditVerification
     */
    public static native byte[] verifyAuditLog(long handle, String path);

    /**
     * The audit log file the store writes.
     *
     * @param handle the handle
     * @return the path, or {@code null} for none
     */
    public static native String auditLogPath(long handle);

    /**
     * This store's export public key.
     *
     * @param handle the handle
     * @return {@code ed25519:…}
     */
    public static native String exportKey(long handle);

    /**
     * A tenant's secrets as an export bundle.
     *
     * @param handle the handle
     * @param tenant tenant id
     * @param recipients age recipients ({@code age1…}), one per line
     * @param allVersions every kept version, not only the current one
     * @return the age file's bytes
     */
    public static native byte[] exportBundle(long handle, String tenant, String recipients, boolean allVersions);

    /**
     * Imports an export bundle, all or nothing.
     *
     * @param handle the handle
     * @param tenant tenant id
     * @param bundle the age file's bytes
     * @param identity the age identity file's UTF-8 bytes (wiped natively after the call)
     * @param trusted trusted export keys, one per line, or {@code null}
     * @param onConflict {@code fail}, {@code skip} or {@code overwrite}
     * @param dryRun report only
     * @return the report as JSON
     */
    public static native String importBundle(long handle, String tenant, byte[] bundle, byte[] identity,
            String trusted, String onConflict, boolean dryRun);

    /**
     * The secrets configuration documents need, checked against a tenant.
     *
     * @param handle the handle
     * @param tenant tenant id
     * @param labels how each document is reported
     * @param texts the documents
     * @return the manifest as JSON
     */
    public static native String manifest(long handle, String tenant, String[] labels, String[] texts);

    /**
     * The native library's version.
     *
     * @return the Rust crate version
     */
    public static native String nativeVersion();

    /** Panics in native code on purpose (for the test suite): must throw InternalException. */
    public static native void panicForTest();

    /**
     * Builds the exception for an error code; called from native code only.
     *
     * @param code the stable error number
     * @param message the detail
     * @param problems wire-encoded placeholder problems, or {@code null}
     * @return the exception to throw
     */
    static Throwable newException(int code, String message, byte[] problems) {
        List<PlaceholderProblem> list = problems == null ? null : Wire.problems(problems);
        return SecretStorageException.of(ErrorCode.of(code), message, list);
    }
}
