package org.tbsecrets;

import java.time.Instant;

/**
 * One kept version of a secret (no value).
 *
 * @param version the version number
 * @param createdAt when it was written
 * @param current whether it is the current version
 */
public record SecretVersion(long version, Instant createdAt, boolean current) {}
