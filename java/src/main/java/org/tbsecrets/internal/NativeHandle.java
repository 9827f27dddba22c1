package org.tbsecrets.internal;

import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.StampedLock;

/**
 * The lifecycle guard of a native handle (docs/JAVA.md, "Threading, lifetime and ownership"): a
 * store handle, or a session handle derived from one.
 *
 * <p>Every native call runs between {@link #enter()} and {@link #exit(long)}, holding a read
 * lock; {@link #run()} (close) first refuses new calls, then takes the write lock, so it waits for
 * the calls in flight before the native handle is freed, and keeps the write lock forever so that
 * every later call fails with {@link IllegalStateException}. A call therefore either completes or
 * throws {@code IllegalStateException}; the native memory is never used after it is freed.
 *
 * <p>A session handle ({@link #openSession}) is guarded by its own lock and by its store's: a
 * session call enters the store's guard first, then the session's. Closing the store waits for
 * session calls in flight too, then closes every session handle still open; closing a session
 * leaves the store open.
 *
 * <p>A close requested on a thread that is inside a native call itself (an
 * {@link org.tbsecrets.AuditListener} runs on the thread of the call that wrote the record,
 * while that call holds its read locks) cannot wait for that call: it would wait for itself.
 * Such a close marks the handle closing at once (new calls on any thread fail with
 * {@link IllegalStateException}) and takes effect once that thread's outermost native call
 * returns, in {@link #exit(long)}: a callback can never deadlock the store. Each thread's part
 * of this (its call depth and deferred closes) is its {@link NativeThread}.
 *
 * <p>It is also the {@link java.lang.ref.Cleaner} action of its {@code SecretStorage} or
 * {@code SecretSession}, so a handle that is never closed is closed when its owner becomes
 * unreachable; it holds no reference to the owner. Running it again does nothing.
 */
public final class NativeHandle implements Runnable {
    private final StampedLock lock = new StampedLock();
    private final String description;
    /** The store's handle for a session handle, else {@code null}. */
    private final NativeHandle store;
    /** The session handles of a store handle that are still open. */
    private final Set<NativeHandle> sessions = ConcurrentHashMap.newKeySet();
    private final AtomicBoolean ran = new AtomicBoolean();
    private volatile boolean closing;
    private long pointer;

    /**
     * Wraps a store handle returned by {@link Native#open}.
     *
     * @param pointer the native handle
     * @param description what to name in "closed" messages, e.g. the store path
     */
    public NativeHandle(long pointer, String description) {
        this(pointer, "secret store " + description, null);
    }

    private NativeHandle(long pointer, String description, NativeHandle store) {
        this.pointer = pointer;
        this.description = description;
        this.store = store;
    }

    /**
     * Opens a session handle acting as a principal over this store handle; call it between
     * {@link #enter()} and {@link #exit(long)} of this handle. The session is closed at the
     * latest when this store handle is.
     *
     * @param tenantId the principal's tenant
     * @param role the principal's {@link org.tbsecrets.Role#number()}
     * @param id the principal's id, or {@code null}
     * @param description what to name in "closed" messages
     * @return the session's guard
     */
    public NativeHandle openSession(String tenantId, int role, String id, String description) {
        long session = Native.openSession(pointer, tenantId, role, id);
        NativeHandle handle = new NativeHandle(session, description, this);
        sessions.add(handle);
        return handle;
    }

    /**
     * Like {@link #openSession}, restricted to an allow-list of names.
     *
     * @param tenantId the principal's tenant
     * @param role the principal's {@link org.tbsecrets.Role#number()}
     * @param id the principal's id, or {@code null}
     * @param allowedNames the allow-list entries (none null)
     * @param description what to name in "closed" messages
     * @return the session's guard
     */
    public NativeHandle openSession(String tenantId, int role, String id, java.util.List<String> allowedNames,
            String description) {
        long session = Native.openSessionAllowed(pointer, tenantId, role, id, allowedNames.size(),
                String.join("\n", allowedNames));
        NativeHandle handle = new NativeHandle(session, description, this);
        sessions.add(handle);
        return handle;
    }

    /**
     * The store's guard of a session handle.
     *
     * @return the store handle's guard, or {@code null} for a store handle
     */
    public NativeHandle store() {
        return store;
    }

    /**
     * Starts a native call: takes a read lock.
     *
     * @return the stamp to pass to {@link #exit(long)}
     * @throws IllegalStateException if the handle is closed or closing
     */
    public long enter() {
        return enter(NativeThread.current());
    }

    /**
     * {@link #enter()} with the calling thread's state already looked up (the hot path looks it
     * up once for its call buffer and both guards).
     *
     * @param thread {@link NativeThread#current()}
     * @return the stamp to pass to {@link #exit(long, NativeThread)}
     * @throws IllegalStateException if the handle is closed or closing
     */
    public long enter(NativeThread thread) {
        long stamp = lock.tryReadLock();
        if (stamp == 0L) {
            throw closed();
        }
        if (closing) {
            lock.unlockRead(stamp);
            throw closed();
        }
        thread.depth++;
        return stamp;
    }

    /**
     * The native handle; only valid between {@link #enter()} and {@link #exit(long)}.
     *
     * @return the handle
     */
    public long pointer() {
        return pointer;
    }

    /**
     * Ends a native call.
     *
     * @param stamp the stamp {@link #enter()} returned
     */
    public void exit(long stamp) {
        exit(stamp, NativeThread.current());
    }

    /**
     * Ends a native call; frees the handles whose close was deferred once the thread is inside
     * none.
     *
     * @param stamp the stamp {@link #enter(NativeThread)} returned
     * @param thread {@link NativeThread#current()}
     */
    public void exit(long stamp, NativeThread thread) {
        lock.unlockRead(stamp);
        if (--thread.depth == 0) {
            List<NativeHandle> deferred = thread.takeDeferred();
            if (deferred != null) {
                for (NativeHandle handle : deferred) {
                    try {
                        handle.free();
                    } catch (RuntimeException flushFailed) {
                        // The handle is freed anyway; the call that returns here has its own
                        // outcome, which a failure of a close requested from a callback must not
                        // replace.
                    }
                }
            }
        }
    }

    /**
     * Whether close has started (for a session: its own close or its store's).
     *
     * @return true once closing
     */
    public boolean isClosed() {
        return closing || (store != null && store.closing);
    }

    /**
     * Closes the native handle once: refuses new calls, waits for the calls in flight, then frees
     * the handle (a store handle closes the store, then its sessions still open). Later calls do
     * nothing. Called on a thread that is inside a native call (from an audit listener), it only
     * refuses new calls and leaves the rest to that thread's outermost {@link #exit(long)}.
     */
    @Override
    public void run() {
        if (!ran.compareAndSet(false, true)) {
            return;
        }
        closing = true;
        NativeThread thread = NativeThread.current();
        if (thread.inCall()) {
            thread.defer(this);
            return;
        }
        free();
    }

    /** Waits for the calls in flight and frees the native handle; run once, by {@link #run()} or {@link #exit}. */
    private void free() {
        lock.writeLock(); // never released: every later enter() fails
        long p = pointer;
        pointer = 0L;
        if (store != null) {
            store.sessions.remove(this);
            Native.closeSession(p);
            return;
        }
        try {
            Native.close(p);
        } finally {
            for (NativeHandle session : sessions) {
                session.run();
            }
        }
    }

    private IllegalStateException closed() {
        if (store != null && store.closing) {
            return store.closed();
        }
        return new IllegalStateException("the " + description + " is closed");
    }
}
