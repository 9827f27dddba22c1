package org.tbsecrets;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import org.tbsecrets.internal.Native;
import org.tbsecrets.internal.NativeHandle;

/**
 * A document resolved with TEXT_FILE values materialised as private files
 * ({@link SecretOperations#resolveMaterialized}): each TEXT_FILE placeholder is replaced by the
 * path of a file holding the value, for a configuration that wants a path (a CA certificate, a
 * private key); TEXT placeholders are replaced by their values as in
 * {@link SecretOperations#resolve}.
 *
 * <p>The files are written once per secret version and store, mode 0600, in a directory only
 * the owner can enter: {@link SecretStorageOptions.Builder#materializeDir(Path)} or a fresh
 * private temporary directory. Results that reference the same secret version share its file.
 * {@link #close()} gives this result's files back: a file no other open result holds is removed
 * at once. Closing the store removes every materialised file (unless
 * {@link SecretStorageOptions#keepMaterialized() kept}); closing a result after its store does
 * nothing.
 *
 * <pre>{@code
 * try (MaterializedDocument config = session.resolveMaterialized(tenantId, nodeConfigJson)) {
 *     mqttClient.connect(config.document());   // "caCert": "/tmp/tbsecrets-…/ca-1-v3.pem"
 * }                                            // the files are removed here
 * }</pre>
 *
 * <p>Thread-safe; {@link #close()} is idempotent. {@link #toString()} never shows the document,
 * which may hold secret values.
 */
public final class MaterializedDocument implements AutoCloseable {
    private final String document;
    private final List<Path> files;
    /** The store's guard (files belong to the store, not to a session). */
    private final NativeHandle store;
    /** The paths separated by NUL, as {@link Native#releaseMaterialized} takes them. */
    private final String release;
    private final AtomicBoolean closed = new AtomicBoolean();

    MaterializedDocument(String document, List<String> files, NativeHandle store) {
        this.document = document;
        this.files = files.stream().map(Path::of).toList();
        this.store = store;
        this.release = String.join("\0", files);
    }

    /**
     * The resolved document (the input itself when it held no placeholder).
     *
     * @return the document, holding secret values and file paths
     */
    public String document() {
        return document;
    }

    /**
     * The materialised files this document references, one per distinct TEXT_FILE secret.
     *
     * @return the paths, in order of first use
     */
    public List<Path> files() {
        return files;
    }

    /**
     * Whether {@link #close()} has been called.
     *
     * @return true once closed
     */
    public boolean isClosed() {
        return closed.get();
    }

    /**
     * Gives this result's files back: each one no other open result holds is removed. Does
     * nothing when called again, or once the store is closed (the store's close removed the files,
     * unless they are kept).
     *
     * @throws StorageException if a file could not be removed
     */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true) || files.isEmpty()) {
            return;
        }
        long stamp;
        try {
            stamp = store.enter();
        } catch (IllegalStateException storeClosed) {
            return;
        }
        try {
            Native.releaseMaterialized(store.pointer(), release);
        } finally {
            store.exit(stamp);
        }
    }

    @Override
    public String toString() {
        return "MaterializedDocument[" + files.size() + " file(s)" + (isClosed() ? ", closed]" : "]");
    }
}
