package org.tbsecrets.spring;

/**
 * A property source holding the resolved values of the properties of another source whose values
 * held <code>${secret:...}</code> placeholders. It is placed just before that source, so each
 * resolved value takes the original's place and precedence; the original stays as it was (with
 * the placeholder text), and this source tells the placeholder text of each of its properties so
 * that the actuator shows that text instead of the value.
 */
public interface ResolvedSecrets {
    /** The prefix of the name of every such source; the original source's name follows. */
    String NAME_PREFIX = "tbsecrets-resolved-";

    /**
     * The raw value (with its placeholders) a property had in the original source.
     *
     * @param name the property name as in the original source
     * @return the placeholder text, or {@code null} if this source does not hold the property
     */
    String placeholderText(String name);

    /**
     * The name of the source the values come from.
     *
     * @return the original source's name
     */
    String originalSourceName();
}
