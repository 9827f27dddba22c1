package org.tbsecrets.spring;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.tbsecrets.spring.PlaceholderSplitter.Piece;

class PlaceholderSplitterTest {
    private static String join(List<Piece> pieces) {
        StringBuilder b = new StringBuilder();
        pieces.forEach(p -> b.append(p.text()));
        return b.toString();
    }

    @Test
    void splitsPlaceholdersFromSpringText() {
        String value = "jdbc:postgresql://${DB_HOST:h}/db?password=${secret:pw;type:TEXT}&x=1";
        List<Piece> pieces = PlaceholderSplitter.split(value);
        assertEquals(List.of(new Piece("jdbc:postgresql://${DB_HOST:h}/db?password=", false),
                new Piece("${secret:pw;type:TEXT}", true), new Piece("&x=1", false)), pieces);
        assertEquals(value, join(pieces));
    }

    @Test
    void escapeIsACorePieceOfItsOwn() {
        List<Piece> pieces = PlaceholderSplitter.split("a$${secret:b}c${secret:d}");
        assertEquals(List.of(new Piece("a", false), new Piece("$${secret:", true), new Piece("b}c", false),
                new Piece("${secret:d}", true)), pieces);
    }

    @Test
    void unterminatedPlaceholderGoesToTheCoreWhole() {
        // The core then reports it as MALFORMED_PLACEHOLDER.
        assertEquals(List.of(new Piece("x", false), new Piece("${secret:never-closed", true)),
                PlaceholderSplitter.split("x${secret:never-closed"));
    }

    @Test
    void valuesWithoutPlaceholdersAreOnePiece() {
        assertFalse(PlaceholderSplitter.hasPlaceholder("${SECRET:x} ${secrets:y} $secret:z"));
        assertTrue(PlaceholderSplitter.hasPlaceholder("a${secret:b}"));
        assertEquals(List.of(new Piece("${DB:x}", false)), PlaceholderSplitter.split("${DB:x}"));
    }

    @Test
    void coreOutputIsEscapedForSpring() {
        assertEquals("plain", PlaceholderSplitter.protectFromSpring("plain"));
        assertEquals("a\\${b}c\\${secret:", PlaceholderSplitter.protectFromSpring("a${b}c${secret:"));
    }
}
