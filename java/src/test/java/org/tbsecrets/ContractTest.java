package org.tbsecrets;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The cross-surface contract ({@code tests/contract/cases.tsv}, whose top describes the format)
 * run against the Java API: one fresh store, every case in order. The Rust API, the C ABI and the
 * CLI run the same file. Maven runs with {@code java/} as the working directory; the system
 * property {@code tbsecrets.contract.cases} names another file.
 */
class ContractTest {
    private static final String HEADER = "op\ttenant\tname\ttype\tvalue\targ\texpect\tresult\tskip\tnote";
    private static final String SURFACE = "java";
    private static final Set<String> SURFACES = Set.of("rust", "c", "java", "cli");

    @TempDir Path dir;

    /** One case of the script. */
    record Case(int line, String op, String tenant, String name, String type, byte[] value, String arg,
            ErrorCode expect, byte[] result, String resultField, List<String> skip, String note) {
        String describe() {
            return "line " + line + ": " + op + " " + tenant + "/" + name + " -> " + expect + " (" + note + ")";
        }
    }

    static Path casesFile() {
        return Path.of(System.getProperty("tbsecrets.contract.cases", "../tests/contract/cases.tsv"));
    }

    /** Decodes one escaped field (its UTF-8 bytes, escapes as the file's header says). */
    static byte[] unescape(String field) {
        byte[] in = field.getBytes(UTF_8);
        ByteArrayOutputStream out = new ByteArrayOutputStream(in.length);
        int last = -1;
        for (int i = 0; i < in.length; i++) {
            if (in[i] != '\\') {
                out.write(in[i]);
                last = in[i] & 0xff;
                continue;
            }
            if (i + 1 >= in.length) {
                throw new IllegalArgumentException("a lone backslash at the end of " + field);
            }
            byte next = in[++i];
            switch (next) {
                case '\\' -> last = '\\';
                case 't' -> last = '\t';
                case 'n' -> last = '\n';
                case 'r' -> last = '\r';
                case 'x' -> {
                    int hi = i + 2 < in.length ? Character.digit(in[i + 1], 16) : -1;
                    int lo = hi < 0 ? -1 : Character.digit(in[i + 2], 16);
                    if (lo < 0) {
                        throw new IllegalArgumentException("\\x needs two hex digits in " + field);
                    }
                    last = hi * 16 + lo;
                    i += 2;
                }
                case '{' -> {
                    int close = i;
                    while (close < in.length && in[close] != '}') {
                        close++;
                    }
                    if (close == in.length || last < 0) {
                        throw new IllegalArgumentException("bad \\{N} in " + field);
                    }
                    int count = Integer.parseInt(new String(in, i + 1, close - i - 1, UTF_8));
                    if (count < 1) {
                        throw new IllegalArgumentException("\\{0} in " + field);
                    }
                    for (int k = 1; k < count; k++) {
                        out.write(last);
                    }
                    i = close;
                    continue;
                }
                default -> throw new IllegalArgumentException("unknown escape \\" + (char) next + " in " + field);
            }
            out.write(last);
        }
        return out.toByteArray();
    }

    static List<Case> load() throws IOException {
        List<String> lines = Files.readAllLines(casesFile(), UTF_8);
        List<Case> cases = new ArrayList<>();
        boolean header = false;
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i);
            int no = i + 1;
            if (line.isEmpty() || line.startsWith("#")) {
                continue;
            }
            if (!header) {
                assertEquals(HEADER, line, "line " + no + ": the header");
                header = true;
                continue;
            }
            String[] f = line.split("\t", -1);
            assertEquals(10, f.length, "line " + no + ": 10 fields");
            List<String> skip = f[8].isEmpty() ? List.of() : Arrays.asList(f[8].split(","));
            for (String s : skip) {
                assertTrue(SURFACES.contains(s), "line " + no + ": unknown surface " + s);
            }
            cases.add(new Case(no, f[0], new String(unescape(f[1]), UTF_8), new String(unescape(f[2]), UTF_8), f[3],
                    unescape(f[4]), f[5], ErrorCode.valueOf(f[6]), unescape(f[7]), f[7], skip, f[9]));
        }
        assertTrue(header, "the file has a header");
        return cases;
    }

    /** What one case returned: the bytes read, or the version written, or nothing. */
    private static Object run(SecretStorage store, Case c) {
        switch (c.op()) {
            case "create": {
                SecretType type = c.type().equals("TEXT") ? SecretType.TEXT : SecretType.TEXT_FILE;
                return store.create(c.tenant(), c.name(), type, c.value(), "").version();
            }
            case "update":
                return c.arg().isEmpty()
                        ? store.updateValue(c.tenant(), c.name(), c.value()).version()
                        : store.updateValue(c.tenant(), c.name(), c.value(), Long.parseLong(c.arg())).version();
            case "rollback":
                return store.rollback(c.tenant(), c.name(), Long.parseLong(c.arg())).version();
            case "get":
                return store.getSecretBytes(c.tenant(), c.name());
            case "delete":
                store.delete(c.tenant(), c.name());
                return null;
            case "undelete":
                store.undelete(c.tenant(), c.name());
                return null;
            case "destroy":
                store.destroy(c.tenant(), c.name());
                return null;
            case "resolve_text":
                return store.resolveTextBytes(c.tenant(), c.value());
            case "resolve_json":
                return store.resolveBytes(c.tenant(), c.value());
            default:
                throw new AssertionError(c.describe() + ": unknown op");
        }
    }

    @Test
    void theJavaApiKeepsTheContract() throws IOException {
        List<Case> cases = load();
        int ran = 0;
        try (SecretStorage store = Fixtures.open(dir)) {
            for (Case c : cases) {
                if (c.skip().contains(SURFACE)) {
                    System.out.println("java: skipped (the file says so): " + c.describe());
                    continue;
                }
                ran++;
                Object got;
                try {
                    got = run(store, c);
                } catch (SecretStorageException e) {
                    assertEquals(c.expect(), e.code(), c.describe() + ": " + e.getMessage());
                    continue;
                }
                if (c.expect() != ErrorCode.OK) {
                    fail(c.describe() + ": succeeded");
                }
                if (got instanceof byte[] bytes) {
                    assertArrayEquals(c.result(), bytes, c.describe());
                } else if (got instanceof Long version && !c.resultField().isEmpty()) {
                    assertEquals(Long.parseLong(c.resultField()), version, c.describe() + ": the version");
                }
            }
        }
        assertTrue(ran > 50, "the contract ran only " + ran + " cases");
    }

    @Test
    void escapesDecodeAsTheFileHeaderSays() {
        assertArrayEquals("a\tb\nc\rd\\e".getBytes(UTF_8), unescape("a\\tb\\nc\\rd\\\\e"));
        assertArrayEquals(new byte[] {0, (byte) 0xff, 'Z'}, unescape("\\x00\\xffZ"));
        assertArrayEquals("xxxy".getBytes(UTF_8), unescape("x\\{3}y"));
        assertArrayEquals("é".getBytes(UTF_8), unescape("é"));
        for (String bad : List.of("\\", "\\q", "\\{3}", "a\\{0}", "a\\{x}", "a\\{3", "\\xzz", "\\x1")) {
            assertThrows(IllegalArgumentException.class, () -> unescape(bad), bad);
        }
    }
}
