package org.tbsecrets.scripting;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.tbsecrets.SecretStorage;
import org.tbsecrets.SecretStorageOptions;
import org.tbsecrets.SecretType;

/** secretStorage.ref: every string conversion gives [secret NAME]; only the sink substitutes, and only issued handles. */
class SecretHandleTest {
    static final String TENANT = ScriptSecretsTest.TENANT;
    static final String VALUE = ScriptSecretsTest.VALUE;
    static final String TEXT = "[secret MyApiKey]";

    @TempDir Path dir;
    SecretStorage store;
    NodeSecrets node;

    @BeforeEach
    void open() {
        byte[] key = new byte[32];
        new SecureRandom().nextBytes(key);
        store = SecretStorage.open(dir.resolve("tb.db"), SecretStorageOptions.withMasterKey(key));
        store.create(TENANT, "MyApiKey", SecretType.TEXT, VALUE.toCharArray(), "");
        store.create(TENANT, "OtherKey", SecretType.TEXT, "other-value".toCharArray(), "");
        node = NodeSecrets.open(store, TENANT, "node-1");
    }

    @AfterEach
    void close() {
        node.close();
        store.close();
    }

    static List<String> javascript() {
        return Engines.javascript();
    }

    /** Script expression → what it must give. */
    static final Map<String, String> CONVERSIONS = Map.ofEntries(
            Map.entry("'' + h", TEXT),
            Map.entry("'Bearer ' + h", "Bearer " + TEXT),
            Map.entry("h + ''", TEXT),
            Map.entry("`Bearer ${h}`", "Bearer " + TEXT),
            Map.entry("String(h)", TEXT),
            Map.entry("h.toString()", TEXT),
            Map.entry("'x'.concat(h)", "x" + TEXT),
            Map.entry("[h, h].join(',')", TEXT + "," + TEXT),
            Map.entry("JSON.stringify(h)", "\"" + TEXT + "\""),
            Map.entry("JSON.stringify({auth: h})", "{\"auth\":\"" + TEXT + "\"}"),
            Map.entry("JSON.stringify([h])", "[\"" + TEXT + "\"]"),
            Map.entry("JSON.stringify({headers: {Authorization: 'Bearer ' + h}})", "{\"headers\":{\"Authorization\":\"Bearer " + TEXT + "\"}}"));

    @ParameterizedTest
    @MethodSource("javascript")
    void everyStringConversionGivesTheHandleText(String engine) {
        try (Engines e = Engines.of(engine); ScriptInvocation inv = node.begin()) {
            CONVERSIONS.forEach((expr, expected) -> assertEquals(expected,
                    e.run(inv, "var h = secretStorage.ref('MyApiKey');\nreturn " + expr + ";"), engine + ": " + expr));
            // The script's return value as a message: the handle inside becomes its text.
            assertEquals("{\"auth\":\"" + TEXT + "\"}", e.run(inv, "return {auth: secretStorage.ref('MyApiKey')};"));
        }
    }

    @ParameterizedTest
    @MethodSource("javascript")
    void loggingAHandlePrintsItsText(String engine) {
        String log = engine.equals("graaljs") ? "console.log" : "print";
        try (Engines e = Engines.of(engine); ScriptInvocation inv = node.begin()) {
            e.run(inv, "var h = secretStorage.ref('MyApiKey');\n" + log + "(h);\n" + log + "('auth=' + h);\n"
                    + log + "(JSON.stringify({h: h}));\nreturn 'ok';");
            if (engine.equals("graaljs")) {
                e.run(inv, "console.error(secretStorage.ref('MyApiKey')); console.info(`t=${secretStorage.ref('MyApiKey')}`); return 1;");
            }
            String out = e.output();
            assertTrue(out.contains(TEXT + "\n") && out.contains("auth=" + TEXT) && out.contains("{\"h\":\"" + TEXT + "\"}"), out);
            assertFalse(out.contains(VALUE), out);
        }
    }

    @Test
    void tbelHandlesPrintTheirText() {
        try (Engines e = Engines.of("tbel"); ScriptInvocation inv = node.begin()) {
            assertEquals("Bearer " + TEXT, e.run(inv, "var h = secretStorage.ref('MyApiKey');\nreturn 'Bearer ' + h;"));
            assertEquals("{\"headers\":{\"Authorization\":\"" + TEXT + "\"}}",
                    e.run(inv, "var h = secretStorage.ref('MyApiKey');\nreturn {headers: {Authorization: h}};"));
            assertEquals(TEXT, e.run(inv, "return secretStorage.ref('MyApiKey').toString();"));
        }
    }

    @Test
    void theSinkSubstitutesOnlyHandlesThisInvocationIssued() {
        try (ScriptInvocation inv = node.begin(); ScriptInvocation other = node.begin()) {
            other.scriptObject().ref("OtherKey");
            SecretHandle h = inv.scriptObject().ref("MyApiKey");
            assertEquals(TEXT, h.toString());
            assertEquals(List.of("MyApiKey"), inv.issuedNames());
            // Issued here → substituted; OtherKey exists but this invocation's script never asked for it.
            assertEquals("Bearer " + VALUE + " [secret OtherKey] [secret Nope] [secret ]",
                    inv.substitute("Bearer [secret MyApiKey] [secret OtherKey] [secret Nope] [secret ]"));
            assertEquals("no handle", inv.substitute("no handle"));
            assertEquals("other-value", other.substitute("[secret OtherKey]"));
            assertEquals("[secret MyApiKey]", other.substitute("[secret MyApiKey]"));
        }
    }

    @Test
    void aClosedInvocationWipesAndRefusesSubstitution() {
        ScriptInvocation inv = node.begin();
        inv.scriptObject().ref("MyApiKey");
        inv.close();
        inv.close();
        assertThrows(IllegalStateException.class, () -> inv.substitute("[secret MyApiKey]"));
        assertThrows(IllegalStateException.class, () -> inv.scriptObject().ref("MyApiKey"));
        assertEquals(List.of(), inv.issuedNames());
    }

    @Test
    void handlesAreEqualByNameAndNeverShowTheValue() {
        try (ScriptInvocation inv = node.begin()) {
            SecretHandle a = inv.scriptObject().ref("MyApiKey");
            SecretHandle b = inv.scriptObject().ref("MyApiKey");
            assertEquals(a, b);
            assertEquals(a.hashCode(), b.hashCode());
            assertEquals(TEXT, a.toJSON("key"));
            assertFalse(inv.toString().contains(VALUE));
            assertEquals("[object SecretStorage]", inv.scriptObject().toString());
        }
    }
}
