package org.tbsecrets;

/**
 * A distinct secret reference of a document: a name and the type its placeholder asks for.
 *
 * @param name the secret name
 * @param type the type written in the placeholder ({@code FILE} is reported as
 *     {@link SecretType#TEXT_FILE}), or {@code null} for the short form that accepts any type
 */
public record SecretRef(String name, SecretType type) {}
