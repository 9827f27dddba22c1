package org.tbsecrets.scripting;

import java.util.Objects;
import org.graalvm.polyglot.HostAccess;

/**
 * What {@code secretStorage.ref('MyApiKey')} returns: an opaque handle a script can pass on (for
 * example as an HTTP header value in the message it emits) but cannot read. Every way a script
 * turns it into a string — {@code toString}, concatenation, template strings,
 * {@code JSON.stringify}, logging — gives {@code [secret MyApiKey]}, never the value; the value
 * stays in the host, and only the host's sink substitutes it ({@link ScriptInvocation#substitute}).
 *
 * <p>It holds the name only. Two handles of the same name are equal.
 */
public final class SecretHandle {
    private final String name;

    SecretHandle(String name) {
        this.name = Objects.requireNonNull(name, "name");
    }

    /**
     * The text every string conversion of the handle gives.
     *
     * @param name the secret's name
     * @return {@code [secret NAME]}
     */
    public static String text(String name) {
        return "[secret " + name + "]";
    }

    /** The name of the secret this handle stands for (host side only). */
    String name() {
        return name;
    }

    /**
     * {@code [secret NAME]}, never the value.
     *
     * @return the handle's text
     */
    @HostAccess.Export
    @Override
    public String toString() {
        return text(name);
    }

    /**
     * What {@code JSON.stringify} writes for the handle (JavaScript calls it with the property key).
     *
     * @param key the property key (ignored)
     * @return {@code [secret NAME]}
     */
    @HostAccess.Export
    public String toJSON(Object key) {
        return toString();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof SecretHandle other && other.name.equals(name);
    }

    @Override
    public int hashCode() {
        return name.hashCode();
    }
}
