package org.tbsecrets;

/**
 * Receives every audit record a store writes ({@link SecretStorageOptions.Builder#auditListener}),
 * e.g. to ship it to a remote log.
 *
 * <p>Each record is one complete JSON line without its newline: who (role, tenant, principal id),
 * what (action, secret names, version, source), the outcome ({@code OK} or an error code name,
 * {@code PERMISSION_DENIED} for denied attempts) — never a secret value. It is called after the
 * record is written to the log file, on the thread that made the store call (for batched value
 * uses: the call that flushed the batch, or {@code close}), outside the store's locks; keep it
 * short. An exception it throws is ignored; it never fails the store call.
 *
 * <p>A listener may close the store or a session, but the call that invoked it is still running
 * on the same thread, so such a close cannot wait for it. The policy: a close from inside a
 * listener <em>takes effect once the call returns</em>. At once the store (or session) counts as
 * closed: {@link SecretStorage#isClosed()} is true and new calls on any thread fail with
 * {@link IllegalStateException}; when the thread's outermost store call returns (normally or by
 * throwing, with its own result), the close completes: calls in flight on other threads are
 * waited for, usage and audit records are flushed, and the native handle is freed (a failure of
 * that final flush is not reported, as there is no caller left to report it to). A listener can
 * therefore never deadlock the store.
 */
@FunctionalInterface
public interface AuditListener {
    /**
     * Called for one audit record.
     *
     * @param jsonLine the record: one JSON object, without a trailing newline
     */
    void onRecord(String jsonLine);
}
