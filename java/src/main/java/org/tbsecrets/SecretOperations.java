package org.tbsecrets;

import java.lang.ref.Cleaner;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.function.LongConsumer;
import java.util.function.LongFunction;
import org.tbsecrets.internal.CallBuffer;
import org.tbsecrets.internal.Native;
import org.tbsecrets.internal.NativeHandle;
import org.tbsecrets.internal.NativeThread;
import org.tbsecrets.internal.Utf8;
import org.tbsecrets.internal.Wire;

/**
 * The operations on secrets, shared by a {@link SecretStorage} (acting as the host program that
 * opened the store: not checked against the access policy, audited as {@code HOST}) and a
 * {@link SecretSession} (acting as a {@link Principal}: every call is checked against the policy
 * and audited, and a call the policy does not allow throws {@link PermissionDeniedException}).
 *
 * <p>Which operation needs which permission: metadata reads ({@code info}, {@code list},
 * {@code history}, {@code whereUsed}, {@code unused}, {@code stale}) need READ; writes
 * ({@code create}, {@code updateValue}, {@code updateDescription}, {@code rollback},
 * {@code trackReferences}, {@code untrack}, {@code rotateTenantKey}) need WRITE; {@code delete},
 * {@code undelete} and {@code destroy} need DELETE; reading values ({@code getSecret},
 * {@code getSecretBytes}, {@code resolve…})
 * needs RESOLVE, all in the tenant named by the call. {@code rotateMasterKey} needs WRITE and
 * {@code verifyAuditLog} and {@code auditLogPath} READ in every tenant. {@code references} and
 * {@code flushUsage} need none.
 *
 * <p>Thread-safe. Errors are {@link SecretStorageException} subclasses carrying the stable
 * {@link ErrorCode}; null arguments throw {@link NullPointerException}; a call after close throws
 * {@link IllegalStateException}.
 */
public abstract sealed class SecretOperations implements AutoCloseable permits SecretStorage, SecretSession {
    /** Closes stores and sessions that are never closed once they become unreachable. */
    static final Cleaner CLEANER = Cleaner.create();

    /** Bytes reserved in a call buffer for the tenant id and name (each at most 255 ASCII bytes). */
    private static final int ARGUMENT_BYTES = 512;

    /** This instance's native handle guard. */
    final NativeHandle handle;
    /** For a session: the guard of its store's handle, entered before {@link #handle}; else null. */
    private final NativeHandle storeHandle;
    /** Call buffer size: the longest TEXT value (4 UTF-8 bytes per character), its length and the arguments. */
    private final int callBufferBytes;

    SecretOperations(NativeHandle handle, int maxTextChars) {
        this.handle = handle;
        this.storeHandle = handle.store();
        this.callBufferBytes = (int) Math.min(Integer.MAX_VALUE - 8, 4L * maxTextChars + Integer.BYTES + ARGUMENT_BYTES);
    }

    /**
     * A facade bound to one tenant, for code that only reads that tenant's secrets (a rule node,
     * a script: {@code secretStorage.getSecret("MyApiKey")}). It acts as this instance does.
     *
     * @param tenantId the tenant
     * @return the facade (closing this instance closes it too)
     */
    public TenantSecrets forTenant(String tenantId) {
        return new TenantSecrets(this, Objects.requireNonNull(tenantId, "tenantId"));
    }

    // ---------------------------------------------------------------- management

    /**
     * Creates a secret (version 1).
     *
     * @param tenantId the tenant
     * @param name the name: 1–255 characters, not all whitespace, none of <code>{ } ;</code>
     * @param type the type
     * @param value the value: UTF-8 for TEXT (at most {@code maxTextChars} characters), any bytes
     *     for TEXT_FILE (at most {@code maxFileBytes}); not modified, wipe it afterwards
     * @param description a description (at most 255 characters), may be empty
     * @return the new secret's metadata
     * @throws AlreadyExistsException if the tenant already has a secret with that name
     * @throws InvalidArgumentException if an argument breaks a validation rule
     */
    public SecretInfo create(String tenantId, String name, SecretType type, byte[] value, String description) {
        require(tenantId, name);
        Objects.requireNonNull(type, "type");
        Objects.requireNonNull(value, "value");
        Objects.requireNonNull(description, "description");
        return call(h -> Wire.info(Native.create(h, tenantId, name, type.number(), value, description)));
    }

    /**
     * Creates a secret from characters (encoded as UTF-8 into a buffer that is wiped afterwards).
     *
     * @param tenantId the tenant
     * @param name the name
     * @param type the type
     * @param value the value's characters; not modified, wipe them afterwards
     * @param description a description, may be empty
     * @return the new secret's metadata
     * @throws AlreadyExistsException if the tenant already has a secret with that name
     * @throws InvalidArgumentException if an argument breaks a validation rule
     */
    public SecretInfo create(String tenantId, String name, SecretType type, char[] value, String description) {
        byte[] bytes = Utf8.encode(Objects.requireNonNull(value, "value"));
        try {
            return create(tenantId, name, type, bytes, description);
        } finally {
            Arrays.fill(bytes, (byte) 0);
        }
    }

    /**
     * Writes a new version of a secret's value.
     *
     * @param tenantId the tenant
     * @param name the secret
     * @param value the new value; not modified, wipe it afterwards
     * @return the updated metadata (version n+1)
     * @throws NotFoundException if there is no such secret
     * @throws InvalidArgumentException if the value breaks its type's rules
     */
    public SecretInfo updateValue(String tenantId, String name, byte[] value) {
        return update(tenantId, name, value, -1L);
    }

    /**
     * Writes a new version only if the current version is {@code expectedVersion}
     * (check-and-set).
     *
     * @param tenantId the tenant
     * @param name the secret
     * @param value the new value; not modified, wipe it afterwards
     * @param expectedVersion the version the caller last saw
     * @return the updated metadata
     * @throws ConflictException if another write came first
     * @throws NotFoundException if there is no such secret
     */
    public SecretInfo updateValue(String tenantId, String name, byte[] value, long expectedVersion) {
        if (expectedVersion < 0) {
            throw new InvalidArgumentException("expectedVersion must not be negative", null);
        }
        return update(tenantId, name, value, expectedVersion);
    }

    /**
     * Writes a new version from characters (UTF-8, wiped afterwards).
     *
     * @param tenantId the tenant
     * @param name the secret
     * @param value the new value's characters; not modified
     * @return the updated metadata
     * @throws NotFoundException if there is no such secret
     */
    public SecretInfo updateValue(String tenantId, String name, char[] value) {
        byte[] bytes = Utf8.encode(Objects.requireNonNull(value, "value"));
        try {
            return update(tenantId, name, bytes, -1L);
        } finally {
            Arrays.fill(bytes, (byte) 0);
        }
    }

    /**
     * Check-and-set update from characters (UTF-8, wiped afterwards).
     *
     * @param tenantId the tenant
     * @param name the secret
     * @param value the new value's characters; not modified
     * @param expectedVersion the version the caller last saw
     * @return the updated metadata
     * @throws ConflictException if another write came first
     */
    public SecretInfo updateValue(String tenantId, String name, char[] value, long expectedVersion) {
        byte[] bytes = Utf8.encode(Objects.requireNonNull(value, "value"));
        try {
            return updateValue(tenantId, name, bytes, expectedVersion);
        } finally {
            Arrays.fill(bytes, (byte) 0);
        }
    }

    private SecretInfo update(String tenantId, String name, byte[] value, long expectedVersion) {
        require(tenantId, name);
        Objects.requireNonNull(value, "value");
        return call(h -> Wire.info(Native.updateValue(h, tenantId, name, value, expectedVersion)));
    }

    /**
     * Changes a secret's description (no new version).
     *
     * @param tenantId the tenant
     * @param name the secret
     * @param description the new description
     * @return the updated metadata
     * @throws NotFoundException if there is no such secret
     */
    public SecretInfo updateDescription(String tenantId, String name, String description) {
        require(tenantId, name);
        Objects.requireNonNull(description, "description");
        return call(h -> Wire.info(Native.updateDescription(h, tenantId, name, description)));
    }

    /**
     * Deletes a secret with all its versions, refusing while tracked sources reference it.
     *
     * @param tenantId the tenant
     * @param name the secret
     * @throws InUseException if sources reference it (the message names them)
     * @throws NotFoundException if there is no such secret
     */
    public void delete(String tenantId, String name) {
        delete(tenantId, name, false);
    }

    /**
     * Deletes a secret; with {@code force}, even while referenced (the references stay in the
     * index, so {@link #whereUsed} still shows what will break).
     *
     * @param tenantId the tenant
     * @param name the secret
     * @param force delete even while referenced
     * @throws InUseException if sources reference it and {@code force} is false
     * @throws NotFoundException if there is no such secret
     */
    public void delete(String tenantId, String name, boolean force) {
        require(tenantId, name);
        run(h -> Native.delete(h, tenantId, name, force));
    }

    /**
     * Makes a deleted secret live again, with its versions, as it was when deleted (within the
     * store's retention, 30 days by default; see {@link #listDeleted}). Needs DELETE.
     *
     * @param tenantId the tenant
     * @param name the secret
     * @throws NotFoundException if no deleted secret has that name
     * @throws IntegrityException if its row was moved in or out of the deleted state in the database
     */
    public void undelete(String tenantId, String name) {
        require(tenantId, name);
        run(h -> Native.undelete(h, tenantId, name));
    }

    /**
     * Erases a secret, live or deleted, and all its versions for good: the stored ciphertexts
     * are overwritten (see SECURITY.md). Needs DELETE.
     *
     * @param tenantId the tenant
     * @param name the secret
     * @throws NotFoundException if there is no such secret
     * @throws InUseException if it is live and tracked sources reference it
     */
    public void destroy(String tenantId, String name) {
        require(tenantId, name);
        run(h -> Native.destroy(h, tenantId, name));
    }

    /**
     * Metadata of one secret (never the value).
     *
     * @param tenantId the tenant
     * @param name the secret
     * @return its metadata
     * @throws NotFoundException if there is no such secret
     */
    public SecretInfo info(String tenantId, String name) {
        require(tenantId, name);
        return call(h -> Wire.info(Native.info(h, tenantId, name)));
    }

    /**
     * All of a tenant's secrets, in name order.
     *
     * @param tenantId the tenant
     * @return every secret's metadata
     */
    public SecretPage list(String tenantId) {
        return list(tenantId, null, 0, 0);
    }

    /**
     * A page of a tenant's secrets in name order, optionally filtered. Skipping costs time in
     * proportion to {@code offset}; page through a large tenant with
     * {@link #list(String, String, String, int)} instead.
     *
     * @param tenantId the tenant
     * @param nameContains a case-sensitive substring the name must contain, or {@code null}
     * @param offset how many matching entries to skip
     * @param limit the page size; 0 for all
     * @return the page
     */
    public SecretPage list(String tenantId, String nameContains, int offset, int limit) {
        Objects.requireNonNull(tenantId, "tenantId");
        return call(h -> Wire.page(Native.list(h, tenantId, nameContains, null, offset, limit, false)));
    }

    /**
     * A page of a tenant's deleted secrets still recoverable with {@link #undelete}, in name
     * order, optionally filtered; each has its {@link SecretInfo#deletedAt()}. Needs READ.
     *
     * @param tenantId the tenant
     * @param nameContains a case-sensitive substring the name must contain, or {@code null}
     * @param offset how many matching entries to skip
     * @param limit the page size; 0 for all
     * @return the page
     */
    public SecretPage listDeleted(String tenantId, String nameContains, int offset, int limit) {
        Objects.requireNonNull(tenantId, "tenantId");
        return call(h -> Wire.page(Native.list(h, tenantId, nameContains, null, offset, limit, true)));
    }

    /**
     * The page of a tenant's secrets after a cursor (keyset paging), optionally filtered: start
     * with {@code after} {@code null}, then pass the previous page's
     * {@link SecretPage#nextAfter()} until it is {@code null}. Every page costs the same however
     * far into the tenant it is, and secrets created or deleted between pages neither repeat nor
     * hide the others.
     *
     * @param tenantId the tenant
     * @param nameContains a case-sensitive substring the name must contain, or {@code null}
     * @param after only names after this one (byte order of UTF-8), or {@code null} for the first page
     * @param limit the page size; 0 for all
     * @return the page
     */
    public SecretPage list(String tenantId, String nameContains, String after, int limit) {
        Objects.requireNonNull(tenantId, "tenantId");
        return call(h -> Wire.page(Native.list(h, tenantId, nameContains, after, 0, limit, false)));
    }

    /**
     * The kept versions of a secret, newest first (numbers and times, never values).
     *
     * @param tenantId the tenant
     * @param name the secret
     * @return the versions
     * @throws NotFoundException if there is no such secret
     */
    public List<SecretVersion> history(String tenantId, String name) {
        require(tenantId, name);
        return call(h -> Wire.versions(Native.history(h, tenantId, name)));
    }

    /**
     * Writes a new version equal to a kept older one.
     *
     * @param tenantId the tenant
     * @param name the secret
     * @param version a kept version (see {@link #history})
     * @return the updated metadata (a new version number)
     * @throws NotFoundException if the secret or that version is not kept
     */
    public SecretInfo rollback(String tenantId, String name, long version) {
        require(tenantId, name);
        return call(h -> Wire.info(Native.rollback(h, tenantId, name, version)));
    }

    // ---------------------------------------------------------------- use

    /**
     * The current value of a TEXT secret. The hot path: a cache lookup and one AES-GCM open in
     * native code; no database access unless the secret changed.
     *
     * @param tenantId the tenant
     * @param name the secret
     * @return the value
     * @throws NotFoundException if there is no such secret
     * @throws TypeMismatchException if it is a TEXT_FILE secret (use {@link #getSecretBytes})
     */
    public String getSecret(String tenantId, String name) {
        require(tenantId, name);
        return getSecret(ascii(tenantId), tenantId, name);
    }

    /**
     * {@link #getSecret(String, String)} with the tenant id's ASCII bytes computed once (by
     * {@link TenantSecrets}), or {@code null} when it is not ASCII.
     */
    String getSecret(byte[] tenantAscii, String tenantId, String name) {
        byte[] nameAscii = tenantAscii == null ? null : ascii(name);
        if (fitsArguments(tenantAscii, nameAscii)) {
            // Hot path: no JNI call; arguments and value go through the thread's call buffer.
            return (String) throughBuffer(tenantAscii, nameAscii, tenantId, name, true);
        }
        return call(h -> Native.getSecret(h, tenantId, name));
    }

    /**
     * A handle on one secret for repeated reads: the tenant id and name are checked and encoded
     * once, so each {@link PreparedSecret#get()} only passes them to the native code. It acts as
     * this instance does (a session's policy applies on every read, and every read is audited);
     * it holds no value.
     *
     * @param tenantId the tenant
     * @param name the secret
     * @return a handle, valid until it or this instance is closed
     */
    public PreparedSecret prepareSecret(String tenantId, String name) {
        require(tenantId, name);
        return new PreparedSecret(this, tenantId, name);
    }

    /**
     * The hot path of {@link #getSecret} and {@link PreparedSecret}: passes the ASCII tenant id and
     * name through the thread's call buffer and reads the value back from it, as a {@code String}
     * if {@code text} (TEXT secrets only) or else as a {@code byte[]} the caller wipes. Called
     * from an audit listener inside another native call of this thread, whose arguments the
     * buffer holds, it takes the object path with {@code tenantId} and {@code name} instead.
     */
    Object throughBuffer(byte[] tenantAscii, byte[] nameAscii, String tenantId, String name, boolean text) {
        NativeThread thread = NativeThread.current();
        if (thread.inCall()) {
            return text
                    ? call(h -> Native.getSecret(h, tenantId, name))
                    : call(h -> Native.getSecretBytes(h, tenantId, name));
        }
        CallBuffer buffer = thread.callBuffer(callBufferBytes);
        buffer.putArguments(tenantAscii, nameAscii);
        Object tooLong;
        NativeHandle store = storeHandle;
        long storeStamp = store == null ? 0L : store.enter(thread);
        try {
            long stamp = handle.enter(thread);
            try {
                long h = handle.pointer();
                tooLong = text
                        ? Native.getSecretInto(h, buffer.address(), buffer.capacity(), tenantAscii.length,
                                nameAscii.length)
                        : Native.getBytesInto(h, buffer.address(), buffer.capacity(), tenantAscii.length,
                                nameAscii.length);
            } finally {
                handle.exit(stamp, thread);
            }
        } finally {
            if (store != null) {
                store.exit(storeStamp, thread);
            }
        }
        if (tooLong != null) {
            return tooLong;
        }
        return text ? buffer.takeString() : buffer.take();
    }

    /** Whether both strings' bytes fit the call buffer's argument area. */
    static boolean fitsArguments(byte[] tenantAscii, byte[] nameAscii) {
        return tenantAscii != null && nameAscii != null
                && tenantAscii.length + nameAscii.length <= ARGUMENT_BYTES;
    }

    /**
     * The current value of a secret of either type, as a new array the caller can wipe.
     *
     * @param tenantId the tenant
     * @param name the secret
     * @return the value's bytes
     * @throws NotFoundException if there is no such secret
     */
    public byte[] getSecretBytes(String tenantId, String name) {
        require(tenantId, name);
        return call(h -> Native.getSecretBytes(h, tenantId, name));
    }

    /**
     * Resolves every placeholder in the string values of a JSON document (a rule-node or
     * integration configuration), at any depth; keys, numbers and formatting are kept byte for
     * byte and substituted values are JSON-escaped. Call it where the configuration is used, and
     * a rotated secret is picked up on the next call.
     *
     * @param tenantId the tenant whose secrets are substituted
     * @param configJson the JSON document
     * @return the resolved document ({@code configJson} itself when it holds no placeholder)
     * @throws UnresolvedPlaceholderException if a secret is missing (all offenders listed)
     * @throws TypeMismatchException if the only problems are placeholders asking for another type
     * @throws MalformedPlaceholderException if a placeholder is malformed
     * @throws InvalidArgumentException if the document is not JSON
     */
    public String resolve(String tenantId, String configJson) {
        return resolveString(tenantId, configJson, true);
    }

    /**
     * Resolves every placeholder of a plain text.
     *
     * @param tenantId the tenant
     * @param text the text
     * @return the resolved text ({@code text} itself when it holds no placeholder)
     * @throws UnresolvedPlaceholderException if a secret is missing (all offenders listed)
     * @throws MalformedPlaceholderException if a placeholder is malformed
     */
    public String resolveText(String tenantId, String text) {
        return resolveString(tenantId, text, false);
    }

    /**
     * Resolves every placeholder in the scalar values of a YAML document (a gateway or
     * application configuration); mapping keys are never resolved. A rewritten scalar is always
     * a string, written so that YAML reads back the exact value: a double-quoted scalar stays
     * double-quoted, a plain one becomes double-quoted (so values such as {@code yes},
     * {@code 1883} or {@code a: b} stay strings), a plain scalar that is one multi-line value (a
     * PEM) becomes a literal block, and inside a block scalar the value is written in place.
     * Every other byte is kept; the output is parsed again and each rewritten scalar compared
     * with its value.
     *
     * @param tenantId the tenant whose secrets are substituted
     * @param yaml the YAML document
     * @return the resolved document ({@code yaml} itself when it holds no placeholder)
     * @throws UnresolvedPlaceholderException if a secret is missing (all offenders listed)
     * @throws TypeMismatchException if the only problems are placeholders asking for another type
     * @throws MalformedPlaceholderException if a placeholder is malformed
     * @throws InvalidArgumentException if the document is not YAML, or a value cannot be written
     *     where its placeholder stands (a multi-line value in a folded block scalar)
     */
    public String resolveYaml(String tenantId, String yaml) {
        Objects.requireNonNull(tenantId, "tenantId");
        Objects.requireNonNull(yaml, "yaml");
        byte[] in = yaml.getBytes(StandardCharsets.UTF_8);
        return decodeResolved(yaml, call(h -> Native.resolveYaml(h, tenantId, in, 0, in.length)));
    }

    /**
     * Resolves a JSON document like {@link #resolve(String, String)}, also filling per-message
     * names from the message's metadata: {@code ${secret:device-{{metadata.deviceName}}-token}}
     * becomes the value of {@code device-sensor-7-token} for {@code deviceName = sensor-7}
     * (ThingsBoard issue #16120). See docs/JAVA.md, "Per-message names".
     *
     * <p>Per-message names resolve only in a session restricted to an allow-list
     * ({@link SecretStorage#session(Principal, List)}), and only to names on it. A metadata value
     * used in a name must be 1 to 128 ASCII letters, digits, spaces and {@code . _ - @ :}
     * (no {@code ..}, no space first or last); the filled name must be a valid name. A
     * per-message placeholder whose variable is missing, whose value is refused, whose filled
     * name is not allowed, or that is used outside a restricted session fails the whole call
     * with {@link UnresolvedPlaceholderException}, naming every such placeholder as written.
     * Metadata entries the document does not use are not checked.
     *
     * @param tenantId the tenant whose secrets are substituted
     * @param configJson the JSON document
     * @param metadata the message metadata (no null key or value)
     * @return the resolved document ({@code configJson} itself when it holds no placeholder)
     * @throws UnresolvedPlaceholderException if a secret is missing or a per-message name cannot
     *     be filled or is not allowed (all offenders listed)
     * @throws TypeMismatchException if the only problems are placeholders asking for another type
     * @throws MalformedPlaceholderException if a placeholder is malformed
     * @throws InvalidArgumentException if the document is not JSON
     * @throws NullPointerException if an argument, a key or a value is {@code null}
     */
    public String resolve(String tenantId, String configJson, Map<String, String> metadata) {
        Objects.requireNonNull(tenantId, "tenantId");
        Objects.requireNonNull(configJson, "configJson");
        Objects.requireNonNull(metadata, "metadata");
        String[] keys = new String[metadata.size()];
        String[] values = new String[keys.length];
        int i = 0;
        for (Map.Entry<String, String> e : metadata.entrySet()) {
            if (i == keys.length) {
                throw new java.util.ConcurrentModificationException("metadata changed during the call");
            }
            keys[i] = Objects.requireNonNull(e.getKey(), "metadata key");
            values[i] = Objects.requireNonNull(e.getValue(), () -> "metadata value of " + e.getKey());
            i++;
        }
        int count = i;
        byte[] in = configJson.getBytes(StandardCharsets.UTF_8);
        byte[] out = call(h -> Native.resolveVars(h, tenantId, in, 0, in.length, true,
                Arrays.copyOf(keys, count), Arrays.copyOf(values, count)));
        if (out == null) {
            return configJson;
        }
        try {
            return new String(out, StandardCharsets.UTF_8);
        } finally {
            Arrays.fill(out, (byte) 0);
        }
    }

    private String resolveString(String tenantId, String document, boolean json) {
        Objects.requireNonNull(tenantId, "tenantId");
        Objects.requireNonNull(document, "document");
        byte[] in = document.getBytes(StandardCharsets.UTF_8);
        return decodeResolved(document, resolveArray(tenantId, in, 0, in.length, json));
    }

    /** The resolved UTF-8 {@code out} as a string, wiped after; {@code document} when null. */
    private static String decodeResolved(String document, byte[] out) {
        if (out == null) {
            return document;
        }
        try {
            return new String(out, StandardCharsets.UTF_8);
        } finally {
            Arrays.fill(out, (byte) 0);
        }
    }

    /**
     * Resolves a UTF-8 JSON document without converting it to a {@code String} (for large
     * documents such as rule-chain exports).
     *
     * @param tenantId the tenant
     * @param utf8Json the UTF-8 document; not modified
     * @return the resolved UTF-8 document, or {@code utf8Json} itself when it holds no
     *     placeholder
     * @throws UnresolvedPlaceholderException if a secret is missing (all offenders listed)
     * @throws InvalidArgumentException if the document is not UTF-8 JSON
     */
    public byte[] resolveBytes(String tenantId, byte[] utf8Json) {
        Objects.requireNonNull(utf8Json, "utf8Json");
        byte[] out = resolveArray(tenantId, utf8Json, 0, utf8Json.length, true);
        return out == null ? utf8Json : out;
    }

    /**
     * Resolves the UTF-8 JSON document between a buffer's position and limit. A direct buffer is
     * read in place (it must not be modified during the call); the buffer's position is not
     * changed.
     *
     * @param tenantId the tenant
     * @param utf8Json the document
     * @return a buffer over the resolved document, or a duplicate of {@code utf8Json} when it
     *     holds no placeholder
     * @throws UnresolvedPlaceholderException if a secret is missing (all offenders listed)
     */
    public ByteBuffer resolveBytes(String tenantId, ByteBuffer utf8Json) {
        return resolveBuffer(tenantId, utf8Json, true);
    }

    /**
     * Resolves a UTF-8 plain text without converting it to a {@code String}.
     *
     * @param tenantId the tenant
     * @param utf8Text the UTF-8 text; not modified
     * @return the resolved text, or {@code utf8Text} itself when it holds no placeholder
     * @throws UnresolvedPlaceholderException if a secret is missing (all offenders listed)
     */
    public byte[] resolveTextBytes(String tenantId, byte[] utf8Text) {
        Objects.requireNonNull(utf8Text, "utf8Text");
        byte[] out = resolveArray(tenantId, utf8Text, 0, utf8Text.length, false);
        return out == null ? utf8Text : out;
    }

    /**
     * Resolves the UTF-8 text between a buffer's position and limit (a direct buffer is read in
     * place).
     *
     * @param tenantId the tenant
     * @param utf8Text the text
     * @return a buffer over the resolved text, or a duplicate of {@code utf8Text} when unchanged
     * @throws UnresolvedPlaceholderException if a secret is missing (all offenders listed)
     */
    public ByteBuffer resolveTextBytes(String tenantId, ByteBuffer utf8Text) {
        return resolveBuffer(tenantId, utf8Text, false);
    }

    /**
     * Resolves the UTF-8 text between a buffer's position and limit into {@code out}, from its
     * position: no array is allocated for the result, so a caller that resolves large texts
     * again and again reuses one output buffer. With direct buffers on both sides the text is
     * read and written in place by the native code.
     *
     * <p>Returns the resolved length {@code n}. When {@code n <= out.remaining()} the resolved
     * text is in {@code out} and its position has moved on by {@code n}; otherwise nothing was
     * written (the position is unchanged) and the caller tries again with at least {@code n}
     * bytes remaining. A text without placeholders is copied as it is. {@code out} then holds
     * secret values: wipe it when done. Neither buffer may change during the call, and they
     * must not overlap.
     *
     * @param tenantId the tenant
     * @param utf8Text the text; its position is not changed
     * @param out where the resolved text goes
     * @return the resolved length
     * @throws UnresolvedPlaceholderException if a secret is missing (all offenders listed);
     *     nothing is then left in {@code out}
     */
    public long resolveTextBytes(String tenantId, ByteBuffer utf8Text, ByteBuffer out) {
        return resolveInto(tenantId, utf8Text, out, false);
    }

    /**
     * {@link #resolveTextBytes(String, ByteBuffer, ByteBuffer)} for a JSON document, resolved
     * as {@link #resolveBytes(String, ByteBuffer)} does (string values only).
     *
     * @param tenantId the tenant
     * @param utf8Json the JSON document; its position is not changed
     * @param out where the resolved document goes
     * @return the resolved length
     * @throws UnresolvedPlaceholderException if a secret is missing (all offenders listed);
     *     nothing is then left in {@code out}
     */
    public long resolveBytes(String tenantId, ByteBuffer utf8Json, ByteBuffer out) {
        return resolveInto(tenantId, utf8Json, out, true);
    }

    private long resolveInto(String tenantId, ByteBuffer doc, ByteBuffer out, boolean json) {
        Objects.requireNonNull(tenantId, "tenantId");
        Objects.requireNonNull(doc, "document");
        Objects.requireNonNull(out, "out");
        if (out.isReadOnly()) {
            throw new java.nio.ReadOnlyBufferException();
        }
        if (doc.isDirect() && out.isDirect()) {
            long n = call(h -> Native.resolveDirectInto(h, tenantId, doc, doc.position(), doc.remaining(), json,
                    out, out.position(), out.remaining()));
            if (n <= out.remaining()) {
                out.position(out.position() + (int) n);
            }
            return n;
        }
        // Heap buffers: resolve to a fresh buffer, then copy what fits.
        ByteBuffer resolved = resolveBuffer(tenantId, doc, json);
        int n = resolved.remaining();
        if (n <= out.remaining()) {
            out.put(resolved);
        }
        if (resolved.hasArray() && resolved.array() != (doc.hasArray() ? doc.array() : null)) {
            Arrays.fill(resolved.array(), (byte) 0);
        }
        return n;
    }

    private ByteBuffer resolveBuffer(String tenantId, ByteBuffer doc, boolean json) {
        Objects.requireNonNull(tenantId, "tenantId");
        Objects.requireNonNull(doc, "document");
        byte[] out;
        if (doc.isDirect()) {
            out = call(h -> Native.resolveDirect(h, tenantId, doc, doc.position(), doc.remaining(), json));
        } else if (doc.hasArray()) {
            out = resolveArray(tenantId, doc.array(), doc.arrayOffset() + doc.position(), doc.remaining(), json);
        } else {
            byte[] copy = new byte[doc.remaining()];
            doc.duplicate().get(copy);
            out = resolveArray(tenantId, copy, 0, copy.length, json);
        }
        return out == null ? doc.duplicate() : ByteBuffer.wrap(out);
    }

    private byte[] resolveArray(String tenantId, byte[] doc, int offset, int length, boolean json) {
        Objects.requireNonNull(tenantId, "tenantId");
        return call(h -> Native.resolve(h, tenantId, doc, offset, length, json));
    }

    /**
     * Resolves a JSON document like {@link #resolve(String, String)}, but replaces each TEXT_FILE
     * placeholder by the path of a private file holding the value (mode 0600, in
     * {@link SecretStorageOptions#materializeDir()} or a private temporary directory), for
     * configurations that want a file (CA certificates, keys). Close the result to remove the
     * files; closing the store removes them too (unless
     * {@linkplain SecretStorageOptions#keepMaterialized() kept}).
     *
     * <pre>{@code
     * try (MaterializedDocument config = store.resolveMaterialized(tenantId, "{\"caCert\": \"${secret:ca;type:TEXT_FILE}\"}")) {
     *     connect(config.document());    // {"caCert": "/tmp/tbsecrets-…/ca-1-v1.pem"}
     * }
     * }</pre>
     *
     * @param tenantId the tenant whose secrets are substituted
     * @param configJson the JSON document
     * @return the resolved document and its files; close it when done
     * @throws UnresolvedPlaceholderException if a secret is missing (all offenders listed; no file
     *     is left behind)
     * @throws MalformedPlaceholderException if a placeholder is malformed
     * @throws InvalidArgumentException if the document is not JSON, or the materialisation
     *     directory is accessible by group or others
     * @throws StorageException if a file cannot be written
     */
    public MaterializedDocument resolveMaterialized(String tenantId, String configJson) {
        return materialize(tenantId, configJson, true);
    }

    /**
     * Resolves a plain text like {@link #resolveText(String, String)}, with TEXT_FILE values
     * materialised as files (see {@link #resolveMaterialized(String, String)}).
     *
     * @param tenantId the tenant
     * @param text the text
     * @return the resolved text and its files; close it when done
     * @throws UnresolvedPlaceholderException if a secret is missing (all offenders listed)
     * @throws MalformedPlaceholderException if a placeholder is malformed
     */
    public MaterializedDocument resolveTextMaterialized(String tenantId, String text) {
        return materialize(tenantId, text, false);
    }

    private MaterializedDocument materialize(String tenantId, String document, boolean json) {
        Objects.requireNonNull(tenantId, "tenantId");
        Objects.requireNonNull(document, "document");
        byte[] in = document.getBytes(StandardCharsets.UTF_8);
        byte[] out = call(h -> Native.resolveMaterialized(h, tenantId, in, 0, in.length, json));
        Wire.Materialized result;
        try {
            result = Wire.materialized(out);
        } finally {
            Arrays.fill(out, (byte) 0);
        }
        String resolved = document;
        if (result.document() != null) {
            try {
                resolved = new String(result.document(), StandardCharsets.UTF_8);
            } finally {
                Arrays.fill(result.document(), (byte) 0);
            }
        }
        return new MaterializedDocument(resolved, result.files(), storeHandle == null ? handle : storeHandle);
    }

    /**
     * The distinct secrets a document (JSON or text) references, in order of first appearance.
     * Needs no store access; in JSON only string values count.
     *
     * @param document the document
     * @return the references
     * @throws MalformedPlaceholderException if a placeholder is malformed (all listed)
     */
    public List<SecretRef> references(String document) {
        byte[] bytes = Objects.requireNonNull(document, "document").getBytes(StandardCharsets.UTF_8);
        return call(h -> Wire.references(Native.references(bytes, 0, bytes.length)));
    }

    /**
     * Records exactly which secrets a source uses, replacing its previous set; feeds
     * {@link #whereUsed} and blocks deleting a referenced secret.
     *
     * @param tenantId the tenant
     * @param sourceId the source, e.g. {@code "rule-node:" + nodeId} (1–255 bytes)
     * @param document the source's configuration
     * @return the references recorded
     * @throws MalformedPlaceholderException if a placeholder is malformed
     */
    public List<SecretRef> trackReferences(String tenantId, String sourceId, String document) {
        Objects.requireNonNull(tenantId, "tenantId");
        Objects.requireNonNull(sourceId, "sourceId");
        byte[] bytes = Objects.requireNonNull(document, "document").getBytes(StandardCharsets.UTF_8);
        return call(h -> Wire.references(Native.trackReferences(h, tenantId, sourceId, bytes, 0, bytes.length)));
    }

    /**
     * Forgets a source's references (when the node or integration is deleted).
     *
     * @param tenantId the tenant
     * @param sourceId the source
     * @return how many references were removed
     */
    public int untrack(String tenantId, String sourceId) {
        Objects.requireNonNull(tenantId, "tenantId");
        Objects.requireNonNull(sourceId, "sourceId");
        return call(h -> Native.untrack(h, tenantId, sourceId));
    }

    /**
     * The tracked sources that reference a secret (exact: from the index, not a text search).
     *
     * @param tenantId the tenant
     * @param name the secret
     * @return the sources
     */
    public List<SecretUsage> whereUsed(String tenantId, String name) {
        require(tenantId, name);
        return call(h -> Wire.usages(Native.whereUsed(h, tenantId, name)));
    }

    // ---------------------------------------------------------------- reports, keys and audit

    /**
     * The secrets of a tenant not read or resolved for at least {@code age} (never used counts),
     * in name order. Usage counters are flushed first.
     *
     * @param tenantId the tenant
     * @param age how long unused
     * @return their metadata
     */
    public List<SecretInfo> unused(String tenantId, Duration age) {
        Objects.requireNonNull(tenantId, "tenantId");
        long millis = millis(age);
        return call(h -> Wire.infos(Native.unused(h, tenantId, millis)));
    }

    /**
     * The secrets of a tenant whose value was last written at least {@code age} ago (candidates
     * for rotation), in name order.
     *
     * @param tenantId the tenant
     * @param age how old the value is
     * @return their metadata
     */
    public List<SecretInfo> stale(String tenantId, Duration age) {
        Objects.requireNonNull(tenantId, "tenantId");
        long millis = millis(age);
        return call(h -> Wire.infos(Native.stale(h, tenantId, millis)));
    }

    private static long millis(Duration age) {
        Objects.requireNonNull(age, "age");
        if (age.isNegative()) {
            throw new InvalidArgumentException("age must not be negative", null);
        }
        try {
            return age.toMillis();
        } catch (ArithmeticException tooLong) {
            return Long.MAX_VALUE;
        }
    }

    /**
     * Replaces the master key: every tenant data key is rewrapped under the new key in memory,
     * then written in one short transaction, so readers keep reading meanwhile (values are not
     * re-encrypted). Afterwards only the new key opens the store
     * (the old one fails with {@link WrongMasterKeyException}); this instance keeps working.
     * Other processes that have the store open must reopen it with the new key.
     *
     * @param newKey 32 raw bytes, not all zero; copied at once (the copy is wiped when the call
     *     returns) and not modified: wipe it afterwards
     * @return what was rewrapped
     * @throws InvalidArgumentException if the key is not 32 bytes long or is all zero
     * @throws PermissionDeniedException for a session whose principal may not WRITE in every
     *     tenant
     */
    public RotationReport rotateMasterKey(byte[] newKey) {
        byte[] key = SecretStorageOptions.copyMasterKey(newKey, "newKey");
        try {
            return call(h -> Wire.rotation(Native.rotateMasterKey(h, key)));
        } finally {
            Arrays.fill(key, (byte) 0);
        }
    }

    /**
     * Moves the master key to a host {@link KeyProvider} (e.g. from a raw key to the host's
     * KMS): every data key is unwrapped by the current key and wrapped by the provider (in
     * memory, then written in one short transaction, as {@link #rotateMasterKey(byte[])}).
     * Afterwards the store uses the provider and only it opens the store
     * ({@link SecretStorageOptions.Builder#keyProvider(KeyProvider)}); to go back to a raw key,
     * use {@link #rotateMasterKey(byte[])}.
     *
     * @param provider the provider; held by the store until it is closed or rotated again
     * @return what was rewrapped
     * @throws KeyUnavailableException if a provider threw (nothing is changed)
     * @throws PermissionDeniedException for a session whose principal may not WRITE in every
     *     tenant
     */
    public RotationReport rotateKeyProvider(KeyProvider provider) {
        Objects.requireNonNull(provider, "provider");
        return call(h -> Wire.rotation(Native.rotateKeyProvider(h, provider)));
    }

    /**
     * Moves the master key to another key provider (docs/KEY-CUSTODY.md), e.g. from a raw key to
     * a KMS hook program: every tenant data key is unwrapped by the current provider and wrapped
     * by the new one, then written in one short transaction. Afterwards only the new provider
     * opens the store.
     *
     * @param spec the new provider's spec, e.g. {@code command:/usr/local/bin/kms-hook key-1}
     * @return what was rewrapped
     * @throws InvalidArgumentException if the spec is malformed
     * @throws KeyUnavailableException if either provider cannot be used (nothing is changed)
     * @throws PermissionDeniedException for a session whose principal may not WRITE in every
     *     tenant
     */
    public RotationReport rotateKeyProvider(String spec) {
        Objects.requireNonNull(spec, "spec");
        return call(h -> Wire.rotation(Native.rotateKeyProviderSpec(h, spec)));
    }

    /**
     * Gives a tenant a new data key and re-encrypts every kept version of its secrets under it,
     * in batches of 256 versions (a transaction each; a version updated meanwhile is left
     * alone); values stay readable throughout. If interrupted, call it again to finish.
     *
     * @param tenantId the tenant
     * @return what was re-encrypted
     * @throws NotFoundException for a tenant without a data key (it never stored a secret)
     * @throws PermissionDeniedException for a session whose principal may not WRITE in the tenant
     */
    public RotationReport rotateTenantKey(String tenantId) {
        Objects.requireNonNull(tenantId, "tenantId");
        return call(h -> Wire.rotation(Native.rotateTenantKey(h, tenantId)));
    }

    /**
     * What {@link #rotateMasterKey(byte[])} would do, with an estimated time (a dry run):
     * changes nothing, writes no audit record.
     *
     * @return the plan
     * @throws PermissionDeniedException for a session whose principal may not WRITE in every
     *     tenant
     */
    public RotationPlan planMasterKeyRotation() {
        return call(h -> Wire.plan(Native.planMasterKeyRotation(h)));
    }

    /**
     * What {@link #rotateTenantKey(String)} would do, with an estimated time (a dry run):
     * changes nothing, writes no audit record.
     *
     * @param tenantId the tenant
     * @return the plan
     * @throws NotFoundException for a tenant without a data key (it never stored a secret)
     * @throws PermissionDeniedException for a session whose principal may not WRITE in the tenant
     */
    public RotationPlan planTenantKeyRotation(String tenantId) {
        Objects.requireNonNull(tenantId, "tenantId");
        return call(h -> Wire.plan(Native.planTenantKeyRotation(h, tenantId)));
    }

    /**
     * Verifies the audit log this store writes (batched records are written first).
     *
     * @return the result, naming the first bad line if any
     * @throws InvalidArgumentException if the store writes no audit log file
     * @throws NotFoundException if the log file does not exist
     * @throws PermissionDeniedException for a session whose principal may not READ in every tenant
     */
    public AuditVerification verifyAuditLog() {
        return call(h -> Wire.verification(Native.verifyAuditLog(h, null)));
    }

    /**
     * Verifies an audit log file written for this store (e.g. a copy or another node's log), with
     * this store's audit key.
     *
     * @param log the log file
     * @return the result, naming the first bad line if any
     * @throws NotFoundException if the file does not exist
     * @throws PermissionDeniedException for a session whose principal may not READ in every tenant
     */
    public AuditVerification verifyAuditLog(Path log) {
        String path = Objects.requireNonNull(log, "log").toString();
        return call(h -> Wire.verification(Native.verifyAuditLog(h, path)));
    }

    /**
     * The audit log file the store writes.
     *
     * @return the file, or empty when auditing is off or goes to a listener only
     * @throws PermissionDeniedException for a session whose principal may not READ in every tenant
     */
    public Optional<Path> auditLogPath() {
        String path = call(h -> Native.auditLogPath(h));
        return path == null ? Optional.empty() : Optional.of(Path.of(path));
    }

    /**
     * This store's export public key ({@code ed25519:…}): importers pass it as a trusted signer.
     *
     * @return the key
     * @throws PermissionDeniedException for a session whose principal may not READ in every tenant
     */
    public String exportKey() {
        return call(h -> Native.exportKey(h));
    }

    /**
     * Writes the tenant's secrets into an export bundle: an age file encrypted to the
     * {@code age1…} recipients (one per line) and signed by this store (docs/FORMATS.md).
     *
     * @param tenantId the tenant
     * @param recipients age recipients, one per line
     * @param allVersions every kept version, not only the current one
     * @return the bundle's bytes
     * @throws InvalidArgumentException for a bad recipient
     * @throws PermissionDeniedException for a session whose principal may not RESOLVE in the tenant
     */
    public byte[] exportBundle(String tenantId, String recipients, boolean allVersions) {
        Objects.requireNonNull(tenantId, "tenantId");
        Objects.requireNonNull(recipients, "recipients");
        return call(h -> Native.exportBundle(h, tenantId, recipients, allVersions));
    }

    /**
     * Imports an export bundle into the tenant, all or nothing.
     *
     * @param tenantId the tenant
     * @param bundle the bundle's bytes
     * @param identity the age identity file's UTF-8 bytes
     * @param trusted the exporting stores' export keys, one per line, or {@code null} (this
     *     store's own key is always trusted)
     * @param onConflict {@code "fail"}, {@code "skip"} or {@code "overwrite"}
     * @param dryRun report only, write nothing
     * @return the report as JSON (never a value)
     * @throws IntegrityException for a changed bundle or an untrusted signer
     * @throws AlreadyExistsException under {@code "fail"} when a name exists
     */
    public String importBundle(String tenantId, byte[] bundle, byte[] identity, String trusted,
            String onConflict, boolean dryRun) {
        Objects.requireNonNull(tenantId, "tenantId");
        Objects.requireNonNull(bundle, "bundle");
        Objects.requireNonNull(identity, "identity");
        Objects.requireNonNull(onConflict, "onConflict");
        return call(h -> Native.importBundle(h, tenantId, bundle, identity, trusted, onConflict, dryRun));
    }

    /**
     * The secrets configuration documents (rule chains, integrations) need, each with the
     * documents using it and its status in the tenant ({@code PRESENT}, {@code MISSING},
     * {@code TYPE_MISMATCH}, {@code PATTERN}): every missing one at once.
     *
     * @param tenantId the tenant
     * @param documents label (e.g. file name) to document text, in report order
     * @return the manifest as JSON ({@code {"secrets": [{"name", "type", "files", "status"}], "tenant"}})
     * @throws MalformedPlaceholderException for a malformed placeholder, naming the document
     * @throws PermissionDeniedException for a session whose principal may not READ in the tenant
     */
    public String manifest(String tenantId, java.util.Map<String, String> documents) {
        Objects.requireNonNull(tenantId, "tenantId");
        Objects.requireNonNull(documents, "documents");
        String[] labels = new String[documents.size()];
        String[] texts = new String[documents.size()];
        int i = 0;
        for (java.util.Map.Entry<String, String> e : documents.entrySet()) {
            labels[i] = Objects.requireNonNull(e.getKey(), "document label");
            texts[i] = Objects.requireNonNull(e.getValue(), "document text");
            i++;
        }
        return call(h -> Native.manifest(h, tenantId, labels, texts));
    }

    /**
     * Writes the batched usage counters (last used time, use count) now; they are otherwise
     * written every few seconds, on {@link #info}, {@link #list} and on close.
     */
    public void flushUsage() {
        run(h -> Native.flushUsage(h));
    }

    /**
     * Whether this instance is closed (a session also counts as closed once its store is).
     *
     * @return true once closing has started
     */
    public boolean isClosed() {
        return handle.isClosed();
    }

    /**
     * Closes this instance; calling it again does nothing. Later calls throw
     * {@link IllegalStateException}.
     */
    @Override
    public abstract void close();

    /**
     * The bytes of an ASCII string (which are its UTF-8), or {@code null} if it holds any other
     * character: those strings take the object path, which also rejects unpaired surrogates.
     */
    static byte[] ascii(String s) {
        byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
        if (bytes.length != s.length()) {
            return null; // a character took more than one byte
        }
        // Equal lengths: every character took one byte, so bytes[i] encodes s.charAt(i). The
        // encoder writes '?' for an unpaired surrogate: such a '?' must not pass for ASCII.
        for (int i = 0; i < bytes.length; i++) {
            if (bytes[i] == '?' && s.charAt(i) != '?') {
                return null;
            }
        }
        return bytes;
    }

    /**
     * Runs a native call on the handle, holding the lifecycle guards' read locks (a session's
     * store's first, then its own).
     */
    private <T> T call(LongFunction<T> nativeCall) {
        NativeHandle store = storeHandle;
        long storeStamp = store == null ? 0L : store.enter();
        try {
            long stamp = handle.enter();
            try {
                return nativeCall.apply(handle.pointer());
            } finally {
                handle.exit(stamp);
            }
        } finally {
            if (store != null) {
                store.exit(storeStamp);
            }
        }
    }

    /** {@link #call} for a native call without a result. */
    private void run(LongConsumer nativeCall) {
        NativeHandle store = storeHandle;
        long storeStamp = store == null ? 0L : store.enter();
        try {
            long stamp = handle.enter();
            try {
                nativeCall.accept(handle.pointer());
            } finally {
                handle.exit(stamp);
            }
        } finally {
            if (store != null) {
                store.exit(storeStamp);
            }
        }
    }

    private static void require(String tenantId, String name) {
        Objects.requireNonNull(tenantId, "tenantId");
        Objects.requireNonNull(name, "name");
    }
}
