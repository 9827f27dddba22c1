package org.tbsecrets;

/**
 * A master key held by the host application — a KMS client, an HSM API — instead of raw bytes
 * ({@link SecretStorageOptions.Builder#keyProvider(KeyProvider)},
 * {@link SecretOperations#rotateKeyProvider(KeyProvider)}): the store never sees the key and
 * asks the provider to wrap and unwrap its data keys (the wrapped blob format of
 * docs/FORMATS.md).
 *
 * <p>Threads: the store calls the provider on the thread of the store call (any thread using
 * the store, possibly several at once), so it must be thread-safe. The store holds it until it
 * is closed or rotated to another provider.
 *
 * <p>Errors: an exception thrown by {@code wrap} or {@code unwrap} makes the store call fail with
 * {@link KeyUnavailableException}, whose message keeps the exception's class and message (never
 * key bytes: do not put any in it); nothing is changed. An {@code unwrap} that finds bytes which
 * are not its own (another key) should throw {@link IntegrityException} (or let
 * {@code javax.crypto.AEADBadTagException} through): opening then fails with
 * {@link WrongMasterKeyException}.
 *
 * <p>Key bytes: the library zeroes the {@code plaintext} array it passes to {@code wrap} and the
 * array {@code unwrap} returns once it has copied them, so {@code unwrap} must return a fresh
 * array; the provider must zero its own intermediate copies of key bytes.
 */
public interface KeyProvider {
    /**
     * Wraps (encrypts) a data key.
     *
     * @param aad the context the key belongs to (public bytes): bind it as associated data if the
     *     KMS supports it, or ignore it (the store checks the context anyway)
     * @param plaintext the key bytes to wrap; zeroed by the library after the call
     * @return the wrapped bytes (non-empty)
     * @throws RuntimeException to refuse (the KMS cannot be reached...)
     */
    byte[] wrap(byte[] aad, byte[] plaintext);

    /**
     * Unwraps what {@link #wrap} returned.
     *
     * @param aad the same context that was given to {@code wrap}
     * @param wrapped what {@code wrap} returned
     * @return a fresh array holding the key bytes; zeroed by the library after it copies them
     * @throws IntegrityException if the bytes are not this provider's own (another key)
     * @throws RuntimeException to refuse (the KMS cannot be reached...)
     */
    byte[] unwrap(byte[] aad, byte[] wrapped);

    /**
     * What the provider is, for messages (never a credential).
     *
     * @return a short description; by default the class name
     */
    default String description() {
        return getClass().getName();
    }
}
