package org.tbsecrets;

/**
 * One placeholder that could not be resolved. Never contains a secret value. Serializable, so
 * that a {@link SecretStorageException} keeps its problems when serialized.
 *
 * @param code why it failed: {@link ErrorCode#NOT_FOUND}, {@link ErrorCode#TYPE_MISMATCH},
 *     {@link ErrorCode#MALFORMED_PLACEHOLDER}, {@link ErrorCode#UNRESOLVED} (cannot be substituted)
 *     or {@link ErrorCode#PERMISSION_DENIED} (outside the session's allow-list)
 * @param name the secret name as written (may be empty or partial when malformed)
 * @param offset byte offset of the <code>${secret:</code> in the UTF-8 document
 * @param reason a short explanation
 */
public record PlaceholderProblem(ErrorCode code, String name, long offset, String reason)
        implements java.io.Serializable {}
