package org.tbsecrets.internal;

import java.util.ArrayList;
import java.util.List;

/**
 * What one thread has of the native calls, found with one {@link ThreadLocal} lookup per call:
 * how many native calls it is inside (more than one only when an {@link
 * org.tbsecrets.AuditListener}, which runs on the thread of the call that wrote the record, calls
 * the store again), the closes deferred until it is inside none ({@link NativeHandle#run()}), and
 * its {@link CallBuffer}. Internal.
 */
public final class NativeThread {
    private static final ThreadLocal<NativeThread> CURRENT = ThreadLocal.withInitial(NativeThread::new);

    /** Native calls entered and not yet exited. */
    int depth;
    /** Handles whose close was requested inside a call, freed when {@link #depth} drops to 0. */
    private List<NativeHandle> deferred;
    /** The call buffer, made on first use and grown on demand. */
    private CallBuffer callBuffer;

    private NativeThread() {
    }

    /**
     * The calling thread's.
     *
     * @return this thread's native-call state
     */
    public static NativeThread current() {
        return CURRENT.get();
    }

    /**
     * Whether the thread is inside a native call (an audit listener calling the store): the call
     * buffer is then the outer call's, and a call must take the object path instead.
     *
     * @return true inside a native call
     */
    public boolean inCall() {
        return depth > 0;
    }

    /**
     * This thread's call buffer, of at least {@code capacity} bytes. Only for a call made outside
     * any other native call ({@link #inCall()} false): a nested call would overwrite the outer
     * call's arguments.
     *
     * @param capacity the size the caller needs
     * @return the buffer
     */
    public CallBuffer callBuffer(int capacity) {
        CallBuffer b = callBuffer;
        if (b == null || b.capacity() < capacity) {
            b = new CallBuffer(capacity);
            callBuffer = b;
        }
        return b;
    }

    /** Defers freeing {@code handle} until this thread's outermost native call returns. */
    void defer(NativeHandle handle) {
        if (deferred == null) {
            deferred = new ArrayList<>(2);
        }
        deferred.add(handle);
    }

    /** The handles deferred so far, cleared; {@code null} if none. */
    List<NativeHandle> takeDeferred() {
        List<NativeHandle> handles = deferred;
        deferred = null;
        return handles;
    }
}
