package org.tbsecrets;

/**
 * The result of verifying an audit log ({@link SecretOperations#verifyAuditLog()}): every line's
 * MAC, its sequence number and its link to the line before. Editing, deleting, inserting or
 * reordering a line breaks the chain at that line.
 *
 * @param records records verified before the first problem (all of them when intact)
 * @param lastSeq the sequence number of the last good record (0 for an empty log)
 * @param problemLine the 1-based line number of the first bad line, or 0 when intact
 * @param problem what is wrong with that line, or {@code null} when intact
 */
public record AuditVerification(long records, long lastSeq, long problemLine, String problem) {
    /**
     * Whether every line verified.
     *
     * @return true when no problem was found
     */
    public boolean isIntact() {
        return problem == null;
    }
}
