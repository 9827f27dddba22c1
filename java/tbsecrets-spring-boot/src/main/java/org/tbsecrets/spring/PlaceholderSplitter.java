package org.tbsecrets.spring;

import java.util.ArrayList;
import java.util.List;

/**
 * Splits a property value into the text Spring must go on seeing as it is (its own {@code ${...}}
 * placeholders included) and the pieces the tbsecrets core resolves: each
 * <code>${secret:...}</code> placeholder and each <code>$${secret:</code> escape. The core parses
 * and validates every piece (a malformed one is its {@code MALFORMED_PLACEHOLDER} error); this
 * class only finds where pieces start and end, so that what the core returns for them can be
 * protected from Spring's placeholder processing.
 */
final class PlaceholderSplitter {
    /** The start of every placeholder of the core. */
    static final String PREFIX = "${secret:";
    /** The core's escape: the literal text <code>${secret:</code>. */
    static final String ESCAPE = "$" + PREFIX;

    /**
     * One piece of a value.
     *
     * @param text the piece
     * @param core whether the core resolves it ({@code false}: Spring's text, left as it is)
     */
    record Piece(String text, boolean core) {}

    private PlaceholderSplitter() {}

    /**
     * Whether a value holds anything for the core.
     *
     * @param value the raw value
     * @return whether it contains <code>${secret:</code>
     */
    static boolean hasPlaceholder(String value) {
        return value.contains(PREFIX);
    }

    /**
     * The pieces of a value, in order; joined they give the value back.
     *
     * @param value the raw value
     * @return the pieces
     */
    static List<Piece> split(String value) {
        List<Piece> pieces = new ArrayList<>();
        int from = 0;
        int at;
        while ((at = value.indexOf(PREFIX, from)) >= 0) {
            if (at > from && value.charAt(at - 1) == '$') {
                addText(pieces, value.substring(from, at - 1));
                pieces.add(new Piece(ESCAPE, true));
                from = at + PREFIX.length();
                continue;
            }
            addText(pieces, value.substring(from, at));
            int close = value.indexOf('}', at + PREFIX.length());
            int end = close < 0 ? value.length() : close + 1;
            pieces.add(new Piece(value.substring(at, end), true));
            from = end;
        }
        addText(pieces, value.substring(from));
        return pieces;
    }

    private static void addText(List<Piece> pieces, String text) {
        if (!text.isEmpty()) {
            pieces.add(new Piece(text, false));
        }
    }

    /**
     * Makes text the core produced literal for Spring: every <code>${</code> becomes
     * <code>\${</code>, Spring's escaped placeholder prefix, which its placeholder processing
     * turns back into <code>${</code> without resolving it.
     *
     * @param resolved what the core returned for a piece
     * @return the text to hand to Spring
     */
    static String protectFromSpring(String resolved) {
        return resolved.contains("${") ? resolved.replace("${", "\\${") : resolved;
    }
}
