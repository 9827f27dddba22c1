package org.tbsecrets;

/**
 * What a key rotation did ({@link SecretOperations#rotateMasterKey(byte[])},
 * {@link SecretOperations#rotateTenantKey(String)}).
 *
 * @param keys tenant data keys rewrapped (master-key rotation) or created (tenant-key rotation)
 * @param versions kept versions re-encrypted (tenant-key rotation only; 0 otherwise)
 * @param keyId the new key's id: the master key's, or the tenant's new data key's
 */
public record RotationReport(long keys, long versions, long keyId) {}
