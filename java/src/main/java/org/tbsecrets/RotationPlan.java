package org.tbsecrets;

/**
 * What a key rotation would do, with an estimated time: the result of a dry run
 * ({@link SecretOperations#planMasterKeyRotation()},
 * {@link SecretOperations#planTenantKeyRotation(String)}), which changes nothing.
 *
 * @param tenants tenants concerned: every tenant with a data key (master key), or the one tenant
 * @param keys data keys that would be rewrapped (master key) or created (tenant key: 1)
 * @param secrets secrets whose versions would be re-encrypted (tenant key; 0 for the master key)
 * @param versions kept versions that would be re-encrypted (tenant key; 0 for the master key)
 * @param keyId the id the new key would get: the master key's, or the tenant's next data key's
 * @param sampled items whose work was timed for the estimate (at most 256)
 * @param estimatedMicros estimated time in microseconds: the per-item time of the sample
 *     (rewrapping a data key, or reading, opening and resealing a version, under a throwaway
 *     key) times the items; the final writes are not included
 */
public record RotationPlan(
        long tenants,
        long keys,
        long secrets,
        long versions,
        long keyId,
        long sampled,
        long estimatedMicros) {}
