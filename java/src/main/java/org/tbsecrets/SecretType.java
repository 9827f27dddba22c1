package org.tbsecrets;

/** The kind of a secret: a UTF-8 text, or a file's bytes (typically PEM). */
public enum SecretType {
    /** A UTF-8 string such as a password, token or API key (≤ 2048 characters by default). */
    TEXT,
    /** Arbitrary bytes such as a CA certificate or a private key (≤ 512 KiB by default). */
    TEXT_FILE;

    /**
     * The stable number used across the native boundary.
     *
     * @return 0 for TEXT, 1 for TEXT_FILE
     */
    public int number() {
        return ordinal();
    }

    /**
     * Parses a type name as placeholders and the CLI write it: {@code TEXT}, {@code TEXT_FILE},
     * or the alias {@code FILE} (case-insensitive, {@code -} accepted for {@code _}).
     *
     * @param name the type name
     * @return the type
     * @throws InvalidArgumentException if the name is not a type
     */
    public static SecretType parse(String name) {
        String n = name.trim().toUpperCase(java.util.Locale.ROOT).replace('-', '_');
        switch (n) {
            case "TEXT":
                return TEXT;
            case "TEXT_FILE":
            case "FILE":
                return TEXT_FILE;
            default:
                throw new InvalidArgumentException(
                        "unknown secret type '" + name + "': expected TEXT, TEXT_FILE or FILE", null);
        }
    }
}
