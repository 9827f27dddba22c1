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
