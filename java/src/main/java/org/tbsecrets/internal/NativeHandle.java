package org.tbsecrets.internal;

import java.util.concurrent.locks.StampedLock;

/**
 * The lifecycle guard of a native store handle (DESIGN.md §8).
 *
 * <p>Every native call runs between {@link #enter()} and {@link #exit(long)}, holding a read
 * lock; {@link #run()} (close) first refuses new calls, then takes the write lock, so it waits for
 * the calls in flight before the native handle is freed, and keeps the write lock forever so that
 * every later call fails with {@link IllegalStateException}. A call therefore either completes or
 * throws {@code IllegalStateException}; the native memory is never used after it is freed.
 *
 * <p>It is also the {@link java.lang.ref.Cleaner} action of its {@code SecretStorage}, so a store
 * that is never closed is closed when it becomes unreachable; it holds no reference to it.
 */
public final class NativeHandle implements Runnable {
    private final StampedLock lock = new StampedLock();
    private final String description;
    private volatile boolean closing;
    private long pointer;

    /**
     * Wraps a handle returned by {@link Native#open}.
     *
     * @param pointer the native handle
     * @param description what to name in "closed" messages, e.g. the store path
     */
    public NativeHandle(long pointer, String description) {
        this.pointer = pointer;
        this.description = description;
    }

    /**
     * Starts a native call: takes a read lock.
     *
     * @return the stamp to pass to {@link #exit(long)}
     * @throws IllegalStateException if the store is closed or closing
     */
    public long enter() {
        long stamp = lock.tryReadLock();
        if (stamp == 0L) {
            throw closed();
        }
        if (closing) {
            lock.unlockRead(stamp);
            throw closed();
        }
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
        lock.unlockRead(stamp);
    }

    /**
     * Whether close has started.
     *
     * @return true once closing
     */
    public boolean isClosed() {
        return closing;
    }

    /**
     * Closes the native store once: refuses new calls, waits for the calls in flight, then frees
     * the handle. Runs at most once (it is a {@code Cleanable} action).
     */
    @Override
    public void run() {
        closing = true;
        lock.writeLock(); // never released: every later enter() fails
        long p = pointer;
        pointer = 0L;
        Native.close(p);
    }

    private IllegalStateException closed() {
        return new IllegalStateException("the secret store " + description + " is closed");
    }
}
