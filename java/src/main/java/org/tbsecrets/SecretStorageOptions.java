package org.tbsecrets;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Objects;
import java.util.function.Function;

/**
 * How to open a {@link SecretStorage}: where the master key comes from, value limits, how many
 * versions to keep, whether to create the store, the access policy of its
 * {@linkplain SecretStorage#session sessions}, and the audit log.
 *
 * <p>The master key is the first of: {@link Builder#masterKey(byte[])} (32 raw bytes),
 * {@link Builder#masterKeyFile(Path)} (a file holding the key in base64, readable only by its
 * owner), then the environment: {@code TBS_MASTER_KEY} (base64) or {@code TBS_MASTER_KEY_FILE}.
 * A raw key is copied when it is handed over, so the caller can wipe its array at once; an
 * all-zero key (what a wiped array holds) is refused with {@link InvalidArgumentException}.
 * Or the key stays with a key provider ({@link Builder#keyProvider(String)}, else
 * {@code TBS_KEY_PROVIDER}): a program (a KMS hook) or a PKCS#11 token wraps the data keys and
 * the key never enters the process (docs/KEY-CUSTODY.md).
 *
 * <pre>{@code
 * SecretStorageOptions options = SecretStorageOptions.builder()
 *         .masterKey(key)              // or .masterKeyFile(path), or nothing: the environment
 *         .maxVersions(20)
 *         .auditListener(line -> remoteLog.send(line))   // every audit record, as a JSON line
 *         .build();
 * }</pre>
 *
 * <p>Auditing is on by default: every change, every use of a value (batched) and every denied
 * attempt becomes one tamper-evident JSON line in {@code <store>.audit.jsonl} beside the store
 * (see {@link SecretStorage#verifyAuditLog()}); records never contain values.
 */
public final class SecretStorageOptions {
    /** Default limit of a TEXT value, in characters (ThingsBoard's default). */
    public static final int DEFAULT_MAX_TEXT_CHARS = 2048;
    /** Default limit of a TEXT_FILE value, in bytes (ThingsBoard's default). */
    public static final int DEFAULT_MAX_FILE_BYTES = 512 * 1024;
    /** Default number of versions kept per secret. */
    public static final int DEFAULT_MAX_VERSIONS = 10;
    /** Default time a writer waits for another process's write lock. */
    public static final Duration DEFAULT_BUSY_TIMEOUT = Duration.ofSeconds(10);

    /** The default retention of deleted secrets: 30 days. */
    public static final Duration DEFAULT_DELETED_RETENTION = Duration.ofDays(30);

    /** The length of a raw master key. */
    public static final int MASTER_KEY_BYTES = 32;

    /** A private copy of the caller's key (never the caller's array), or {@code null}. */
    private final byte[] masterKey;
    /** Whether {@link #wipeMasterKey()} has wiped {@link #masterKey}. */
    private boolean wiped;
    private final Path masterKeyFile;
    private final int maxTextChars;
    private final int maxFileBytes;
    private final int maxVersions;
    private final boolean createIfMissing;
    private final Duration busyTimeout;
    private final Duration deletedRetention;
    private final String policyJson;
    private final boolean auditEnabled;
    private final Path auditLog;
    private final AuditListener auditListener;
    private final Path materializeDir;
    private final boolean keepMaterialized;
    private final KeyProvider keyProvider;
    private final String keyProviderSpec;
    private final Duration keyCacheTtl;

    private SecretStorageOptions(Builder b) {
        this.masterKey = b.masterKey == null ? null : b.masterKey.clone();
        this.masterKeyFile = b.masterKeyFile;
        this.maxTextChars = b.maxTextChars;
        this.maxFileBytes = b.maxFileBytes;
        this.maxVersions = b.maxVersions;
        this.createIfMissing = b.createIfMissing;
        this.busyTimeout = b.busyTimeout;
        this.deletedRetention = b.deletedRetention;
        this.policyJson = b.policyJson;
        this.auditEnabled = b.auditEnabled;
        this.auditLog = b.auditLog;
        this.auditListener = b.auditListener;
        this.materializeDir = b.materializeDir;
        this.keepMaterialized = b.keepMaterialized;
        this.keyProvider = b.keyProvider;
        this.keyProviderSpec = b.keyProviderSpec;
        this.keyCacheTtl = b.keyCacheTtl;
    }

    /**
     * Default options: the master key from {@code TBS_MASTER_KEY} or {@code TBS_MASTER_KEY_FILE},
     * default limits, and the store created if missing.
     *
     * @return the defaults
     */
    public static SecretStorageOptions fromEnvironment() {
        return builder().build();
    }

    /**
     * Default options with an explicit raw master key.
     *
     * @param masterKey 32 raw bytes, not all zero; copied at once, so the caller can (and should)
     *     wipe its array right after this call
     * @return the options
     * @throws InvalidArgumentException if the key is not 32 bytes long or is all zero
     */
    public static SecretStorageOptions withMasterKey(byte[] masterKey) {
        return builder().masterKey(masterKey).build();
    }

    /**
     * A builder starting from the defaults.
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * The explicit raw master key, if any, as a new copy: the caller should wipe it after use
     * (these options keep their own copy, which no caller can reach).
     *
     * @return a copy of the key, or {@code null} when another source is used or the key was
     *     {@linkplain #wipeMasterKey() wiped}
     */
    public byte[] masterKey() {
        synchronized (this) {
            return masterKey == null || wiped ? null : masterKey.clone();
        }
    }

    /**
     * Wipes the copy of the raw master key these options hold (fills it with zeros and forgets
     * it). Opening a store with options wiped this way fails with
     * {@link InvalidArgumentException}; a store already open is not affected. Call it once every
     * store that needs these options is open. Does nothing when no raw key was set.
     */
    public void wipeMasterKey() {
        synchronized (this) {
            if (masterKey != null) {
                Arrays.fill(masterKey, (byte) 0);
                wiped = true;
            }
        }
    }

    /**
     * Runs {@code use} with a temporary copy of the raw master key (or {@code null}), wiped when
     * it returns.
     */
    <T> T useMasterKey(Function<byte[], T> use) {
        byte[] copy;
        synchronized (this) {
            if (wiped) {
                throw new InvalidArgumentException(
                        "the master key of these options was wiped (wipeMasterKey); build new options", null);
            }
            copy = masterKey == null ? null : masterKey.clone();
        }
        try {
            return use.apply(copy);
        } finally {
            if (copy != null) {
                Arrays.fill(copy, (byte) 0);
            }
        }
    }

    /**
     * The master key file, if any.
     *
     * @return the file, or {@code null}
     */
    public Path masterKeyFile() {
        return masterKeyFile;
    }

    /**
     * The longest TEXT value, in characters.
     *
     * @return the limit
     */
    public int maxTextChars() {
        return maxTextChars;
    }

    /**
     * The longest TEXT_FILE value, in bytes.
     *
     * @return the limit
     */
    public int maxFileBytes() {
        return maxFileBytes;
    }

    /**
     * How many versions of each secret are kept.
     *
     * @return at least 1
     */
    public int maxVersions() {
        return maxVersions;
    }

    /**
     * Whether a missing store file is created (mode 0600).
     *
     * @return true to create
     */
    public boolean createIfMissing() {
        return createIfMissing;
    }

    /**
     * How long a writer waits for another process's write lock.
     *
     * @return the timeout
     */
    public Duration busyTimeout() {
        return busyTimeout;
    }

    /**
     * How long a deleted secret stays recoverable with {@code undelete}; older ones are erased
     * when a store opens and by each delete. Zero: a delete erases at once.
     *
     * @return the retention
     */
    public Duration deletedRetention() {
        return deletedRetention;
    }

    /**
     * The access policy of sessions, as JSON.
     *
     * @return the policy, or {@code null} for the default ThingsBoard roles (see {@link Role})
     */
    public String policyJson() {
        return policyJson;
    }

    /**
     * Whether audit records are written at all.
     *
     * @return true (the default) to audit
     */
    public boolean auditEnabled() {
        return auditEnabled;
    }

    /**
     * The audit log file.
     *
     * @return the file, or {@code null} for the default: the file {@code TBS_AUDIT_LOG} names, else
     *     {@code <store>.audit.jsonl}
     */
    public Path auditLog() {
        return auditLog;
    }

    /**
     * The listener that receives every audit record.
     *
     * @return the listener, or {@code null} for none
     */
    public AuditListener auditListener() {
        return auditListener;
    }

    /**
     * The host key provider holding the master key.
     *
     * @return the provider, or {@code null} for a raw master key
     */
    public KeyProvider keyProvider() {
        return keyProvider;
    }

    /**
     * The directory of materialised TEXT_FILE values (see
     * {@link SecretOperations#resolveMaterialized}).
     *
     * @return the directory, or {@code null} for a fresh private temporary directory per store
     */
    public Path materializeDir() {
        return materializeDir;
    }

    /**
     * Whether materialised files outlive the store (they are still removed when their
     * {@link MaterializedDocument} is closed).
     *
     * @return true to keep them when the store closes (default false)
     */
    public boolean keepMaterialized() {
        return keepMaterialized;
    }

    /**
     * The key provider spec, if any (e.g. {@code command:/usr/local/bin/kms-hook key-1}).
     *
     * @return the spec, or {@code null} for the raw key sources (or {@code TBS_KEY_PROVIDER})
     */
    public String keyProviderSpec() {
        return keyProviderSpec;
    }

    /**
     * How long unwrapped data keys stay in memory before they are wiped and asked of the key
     * provider again.
     *
     * @return the lifetime, or {@code null} for the store's lifetime (the default)
     */
    public Duration keyCacheTtl() {
        return keyCacheTtl;
    }

    /** Builds {@link SecretStorageOptions}; every setter returns the builder. */
    public static final class Builder {
        private byte[] masterKey;
        private Path masterKeyFile;
        private int maxTextChars = DEFAULT_MAX_TEXT_CHARS;
        private int maxFileBytes = DEFAULT_MAX_FILE_BYTES;
        private int maxVersions = DEFAULT_MAX_VERSIONS;
        private boolean createIfMissing = true;
        private Duration busyTimeout = DEFAULT_BUSY_TIMEOUT;
        private Duration deletedRetention = DEFAULT_DELETED_RETENTION;
        private String policyJson;
        private boolean auditEnabled = true;
        private Path auditLog;
        private AuditListener auditListener;
        private Path materializeDir;
        private boolean keepMaterialized;
        private KeyProvider keyProvider;
        private String keyProviderSpec;
        private Duration keyCacheTtl;

        private Builder() {}

        /**
         * Uses a raw master key (wins over a key file and the environment).
         *
         * @param key exactly 32 bytes, not all zero; copied at once, so the caller can (and should)
         *     wipe its array right after this call
         * @return this builder
         * @throws InvalidArgumentException if the key is not 32 bytes long or is all zero
         */
        public Builder masterKey(byte[] key) {
            byte[] copy = copyMasterKey(key, "key");
            if (this.masterKey != null) {
                Arrays.fill(this.masterKey, (byte) 0);
            }
            this.masterKey = copy;
            return this;
        }

        /**
         * Reads the master key from a file holding it in base64; the file must not be accessible
         * by group or others.
         *
         * @param file the key file
         * @return this builder
         */
        public Builder masterKeyFile(Path file) {
            this.masterKeyFile = Objects.requireNonNull(file, "file");
            return this;
        }

        /**
         * Takes the master key from {@code TBS_MASTER_KEY}, else {@code TBS_MASTER_KEY_FILE} (the
         * default), dropping any key or key file set before.
         *
         * @return this builder
         */
        public Builder masterKeyFromEnvironment() {
            if (this.masterKey != null) {
                Arrays.fill(this.masterKey, (byte) 0);
            }
            this.masterKey = null;
            this.masterKeyFile = null;
            return this;
        }

        /**
         * Sets the longest TEXT value.
         *
         * @param chars a positive number of characters
         * @return this builder
         */
        public Builder maxTextChars(int chars) {
            this.maxTextChars = positive(chars, "maxTextChars");
            return this;
        }

        /**
         * Sets the longest TEXT_FILE value.
         *
         * @param bytes a positive number of bytes
         * @return this builder
         */
        public Builder maxFileBytes(int bytes) {
            this.maxFileBytes = positive(bytes, "maxFileBytes");
            return this;
        }

        /**
         * Sets how many versions of each secret are kept.
         *
         * @param versions at least 1
         * @return this builder
         */
        public Builder maxVersions(int versions) {
            this.maxVersions = positive(versions, "maxVersions");
            return this;
        }

        /**
         * Sets whether a missing store is created.
         *
         * @param create true to create
         * @return this builder
         */
        public Builder createIfMissing(boolean create) {
            this.createIfMissing = create;
            return this;
        }

        /**
         * Sets how long a writer waits for another process's write lock.
         *
         * @param timeout a non-negative duration
         * @return this builder
         */
        public Builder busyTimeout(Duration timeout) {
            Objects.requireNonNull(timeout, "timeout");
            if (timeout.isNegative()) {
                throw new InvalidArgumentException("busyTimeout must not be negative", null);
            }
            this.busyTimeout = timeout;
            return this;
        }

        /**
         * Sets how long a deleted secret stays recoverable with {@code undelete} (default
         * {@link #DEFAULT_DELETED_RETENTION}); zero makes a delete erase at once, as
         * {@code destroy} does.
         *
         * @param retention a non-negative duration
         * @return this builder
         */
        public Builder deletedRetention(Duration retention) {
            Objects.requireNonNull(retention, "retention");
            if (retention.isNegative()) {
                throw new InvalidArgumentException("deletedRetention must not be negative", null);
            }
            this.deletedRetention = retention;
            return this;
        }

        /**
         * Sets the access policy of sessions: which role may do which operations (READ, WRITE,
         * DELETE, RESOLVE) in its own tenant or in any tenant; anything not granted is denied.
         * Checked when the store is opened. The store's own methods (the host) are not subject
         * to it.
         *
         * <pre>{@code
         * {"rules": [
         *   {"role": "SERVICE",      "operations": ["READ", "RESOLVE"],          "tenants": "own"},
         *   {"role": "TENANT_ADMIN", "operations": ["READ", "WRITE", "DELETE"], "tenants": "own"},
         *   {"role": "SYS_ADMIN",    "operations": ["READ", "WRITE", "DELETE"], "tenants": "any"}
         * ]}
         * }</pre>
         *
         * @param json the policy, or {@code null} for the default (the rules above)
         * @return this builder
         */
        public Builder policyJson(String json) {
            this.policyJson = json;
            return this;
        }

        /**
         * Sets whether audit records are written at all (default true).
         *
         * @param enabled false to write no audit log and call no listener
         * @return this builder
         */
        public Builder auditEnabled(boolean enabled) {
            this.auditEnabled = enabled;
            return this;
        }

        /**
         * Writes the audit log to a file other than the default {@code <store>.audit.jsonl}.
         *
         * @param file the log file (created if missing, mode 0600)
         * @return this builder
         */
        public Builder auditLog(Path file) {
            this.auditLog = Objects.requireNonNull(file, "file");
            return this;
        }

        /**
         * Hands every audit record to a listener as well (see {@link AuditListener}).
         *
         * @param listener the listener, or {@code null} for none
         * @return this builder
         */
        public Builder auditListener(AuditListener listener) {
            this.auditListener = listener;
            return this;
        }

        /**
         * Takes the master key from a host {@link KeyProvider} (a KMS client) instead of raw
         * bytes: a new store is created with its data keys wrapped by the provider; an existing
         * one must have been written under it ({@link WrongMasterKeyException} otherwise; see
         * {@link SecretOperations#rotateKeyProvider(KeyProvider)}). Give no master key (nor key
         * file) then: opening with both throws {@link InvalidArgumentException}.
         *
         * @param provider the provider, or {@code null} for a raw master key
         * @return this builder
         */
        public Builder keyProvider(KeyProvider provider) {
            this.keyProvider = provider;
            return this;
        }

        /**
         * Writes materialised TEXT_FILE values (see {@link SecretOperations#resolveMaterialized})
         * to this directory instead of a fresh private temporary one. It is created with mode
         * 0700 if missing; an existing one must not be accessible by group or others (checked
         * when the first file is written: {@link InvalidArgumentException}).
         *
         * @param dir the directory
         * @return this builder
         */
        public Builder materializeDir(Path dir) {
            this.materializeDir = Objects.requireNonNull(dir, "dir");
            return this;
        }

        /**
         * Keeps materialised files when the store closes (default false: the store's close
         * removes them). Closing a {@link MaterializedDocument} still removes its files. Only
         * applies with {@link #materializeDir(Path)}.
         *
         * @param keep true to keep them
         * @return this builder
         */
        public Builder keepMaterialized(boolean keep) {
            this.keepMaterialized = keep;
            return this;
        }

        /**
         * Leaves the master key with a key provider (docs/KEY-CUSTODY.md): {@code raw},
         * {@code command:PROGRAM [ARG…]} (a program wraps and unwraps data keys) or
         * {@code pkcs11:module=…,token=…,key=…,pin-file=…}. Exclusive with a raw key or key file
         * and with a {@link KeyProvider} object (opening with both throws
         * {@link InvalidArgumentException}); a malformed spec throws it
         * when the store is opened.
         *
         * @param spec the provider spec
         * @return this builder
         */
        public Builder keyProvider(String spec) {
            this.keyProviderSpec = Objects.requireNonNull(spec, "spec");
            return this;
        }

        /**
         * Wipes unwrapped data keys (and the values cached under them) at the first call after
         * this interval passed, so that the key provider is asked again (default: keep them while
         * the store is open; an idle store keeps them until its next call). See also
         * {@link SecretStorage#forgetKeys()}.
         *
         * @param ttl a positive duration of at least a millisecond
         * @return this builder
         * @throws InvalidArgumentException if it is shorter than a millisecond
         */
        public Builder keyCacheTtl(Duration ttl) {
            Objects.requireNonNull(ttl, "ttl");
            if (ttl.toMillis() < 1) {
                throw new InvalidArgumentException("keyCacheTtl must be at least 1 ms; got " + ttl, null);
            }
            this.keyCacheTtl = ttl;
            return this;
        }

        /**
         * Builds the options.
         *
         * @return the options
         */
        public SecretStorageOptions build() {
            return new SecretStorageOptions(this);
        }

        private static int positive(int value, String what) {
            if (value <= 0) {
                throw new InvalidArgumentException(what + " must be positive; got " + value, null);
            }
            return value;
        }
    }

    /**
     * A copy of a raw master key handed over by a caller, checked: 32 bytes, not all zero (an
     * all-zero key is what a wiped array holds, never a real key).
     *
     * @param key the caller's array (not modified)
     * @param what the parameter's name, for messages
     * @return a new array the library owns and wipes
     * @throws InvalidArgumentException if the key is not 32 bytes long or is all zero
     */
    static byte[] copyMasterKey(byte[] key, String what) {
        Objects.requireNonNull(key, what);
        byte[] copy = key.clone();
        if (copy.length != MASTER_KEY_BYTES) {
            Arrays.fill(copy, (byte) 0);
            throw new InvalidArgumentException(
                    "a master key must be " + MASTER_KEY_BYTES + " bytes; got " + copy.length + " bytes", null);
        }
        int bits = 0;
        for (byte b : copy) {
            bits |= b;
        }
        if (bits == 0) {
            throw new InvalidArgumentException(
                    "the master key is all zero bytes (a wiped array?); it is refused as a key", null);
        }
        return copy;
    }
}
