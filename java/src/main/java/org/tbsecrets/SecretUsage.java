package org.tbsecrets;

/**
 * A source (rule node, integration, config file) that references a secret, from the exact
 * "where used" index.
 *
 * @param sourceId the id the source was tracked under
 * @param name the referenced secret
 * @param type the type its placeholder asks for, or {@code null} for any type
 */
public record SecretUsage(String sourceId, String name, SecretType type) {}
