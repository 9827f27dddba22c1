package org.tbsecrets.internal;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetEncoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import org.tbsecrets.InvalidArgumentException;

/** Strict UTF-8 encoding of secret values given as {@code char[]}. Internal. */
public final class Utf8 {
    private Utf8() {}

    /**
     * Encodes characters as UTF-8 without leaving copies behind: the intermediate buffer is
     * wiped. The caller wipes the result.
     *
     * @param chars the characters (not modified)
     * @return their UTF-8 bytes
     * @throws InvalidArgumentException if the characters hold an unpaired surrogate
     */
    public static byte[] encode(char[] chars) {
        CharsetEncoder encoder = StandardCharsets.UTF_8.newEncoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer out = ByteBuffer.allocate(chars.length * 3);
        try {
            var result = encoder.encode(CharBuffer.wrap(chars), out, true);
            if (result.isError()) {
                result.throwException();
            }
            encoder.flush(out);
            return Arrays.copyOf(out.array(), out.position());
        } catch (CharacterCodingException e) {
            throw new InvalidArgumentException(
                    "the value is not valid Unicode text (it holds an unpaired UTF-16 surrogate)", null);
        } finally {
            Arrays.fill(out.array(), (byte) 0);
        }
    }
}
