package org.tbsecrets.internal;

import java.lang.ref.Reference;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * A thread's direct buffer through which the {@code getSecret} hot path passes its arguments and
 * its result, so that the native call itself makes no JNI call (each costs tens of nanoseconds):
 * Java writes the tenant id and name, the native code reads them and writes the value over them,
 * and Java copies the value out and wipes it from the buffer at once. Internal.
 *
 * <p>One buffer per thread ({@link NativeThread#callBuffer}), used for one call at a time (a
 * call made from an audit listener inside another native call takes the object path instead);
 * it grows to the largest size a store needs ({@code 4 × maxTextChars} plus room for the tenant
 * id and name). A value that does not fit (written under a larger limit) comes back as a
 * {@code String}.
 */
public final class CallBuffer {
    private final ByteBuffer buffer;
    private final long address;
    private final int capacity;
    /** Where {@link #takeString} decodes a value from, wiped after each use. */
    private byte[] scratch = new byte[64];

    /** A buffer of {@code capacity} bytes (one per thread: {@link NativeThread#callBuffer}). */
    CallBuffer(int capacity) {
        this.capacity = capacity;
        this.buffer = ByteBuffer.allocateDirect(capacity).order(ByteOrder.nativeOrder());
        this.address = Native.directBufferAddress(buffer);
    }

    /**
     * Writes the tenant id and name bytes at the start of the buffer.
     *
     * @param tenant the tenant id's bytes
     * @param name the name's bytes
     */
    public void putArguments(byte[] tenant, byte[] name) {
        buffer.put(0, tenant).put(tenant.length, name);
    }

    /**
     * The native address of the buffer.
     *
     * @return the address
     */
    public long address() {
        return address;
    }

    /**
     * The buffer's size in bytes.
     *
     * @return the capacity
     */
    public int capacity() {
        return capacity;
    }

    /**
     * Decodes a UTF-8 result (an {@code int} length, then that many bytes) into a {@code String}
     * through this thread's scratch array, and wipes both the buffer and the scratch array: no
     * array is allocated but the string's own.
     *
     * @return the result as text
     */
    public String takeString() {
        int end = Integer.BYTES;
        byte[] s = scratch;
        int length = 0;
        try {
            length = buffer.getInt(0);
            end += length;
            if (s.length < length) {
                s = new byte[length];
                scratch = s;
            }
            buffer.get(Integer.BYTES, s, 0, length);
            return new String(s, 0, length, StandardCharsets.UTF_8);
        } finally {
            Arrays.fill(s, 0, Math.min(Math.max(length, 0), s.length), (byte) 0);
            wipe(end);
        }
    }

    /**
     * Copies a result (an {@code int} length, then that many bytes) out of the buffer and wipes it
     * there.
     *
     * @return a new array holding the result (the caller wipes it)
     */
    public byte[] take() {
        int end = Integer.BYTES;
        try {
            int length = buffer.getInt(0);
            end += length;
            byte[] out = new byte[length];
            buffer.get(Integer.BYTES, out);
            return out;
        } finally {
            wipe(end);
        }
    }

    /** Zeroes the first {@code end} bytes of the buffer. */
    private void wipe(int end) {
        int i = 0;
        for (; i + Long.BYTES <= end; i += Long.BYTES) {
            buffer.putLong(i, 0L);
        }
        for (; i < end; i++) {
            buffer.put(i, (byte) 0);
        }
        Reference.reachabilityFence(buffer);
    }
}
