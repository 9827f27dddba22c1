package org.tbsecrets;

import java.time.Instant;

/**
 * Metadata of a secret, as {@code info}, {@code list} and every write return it. Never contains
 * the value.
 *
 * @param tenantId the tenant the secret belongs to
 * @param name the secret name, unique in the tenant
 * @param type the secret type
 * @param description the free-text description
 * @param version the current version (1 after creation)
 * @param createdAt when the secret was created
 * @param updatedAt the last value or description change
 * @param valueUpdatedAt when the current value was written
 * @param lastUsedAt the last time the value was read or resolved, or {@code null} if never
 * @param useCount how many times the value was read or resolved (counted in batches)
 * @param deletedAt when the secret was deleted, for a deleted secret still recoverable with
 *     {@code undelete} (as {@code listDeleted} returns them); {@code null} for a live secret
 */
public record SecretInfo(
        String tenantId,
        String name,
        SecretType type,
        String description,
        long version,
        Instant createdAt,
        Instant updatedAt,
        Instant valueUpdatedAt,
        Instant lastUsedAt,
        long useCount,
        Instant deletedAt) {

    /**
     * Whether this is a deleted secret (recoverable with {@code undelete}).
     *
     * @return true if {@link #deletedAt()} is set
     */
    public boolean isDeleted() {
        return deletedAt != null;
    }
}
