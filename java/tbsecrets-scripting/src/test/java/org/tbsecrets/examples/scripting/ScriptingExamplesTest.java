package org.tbsecrets.examples.scripting;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpServer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import java.util.logging.SimpleFormatter;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.tbsecrets.SecretStorage;
import org.tbsecrets.SecretStorageOptions;
import org.tbsecrets.SecretType;
import org.tbsecrets.scripting.GraalJsScripts;

/** The examples of examples/java-scripting do what docs/JAVA.md ("Script engines") says. */
class ScriptingExamplesTest {
    static final String TENANT = "0d2f7a10-1dd2-11b2-8080-808080808080";
    static final String VALUE = "s3cr3t-Bearer-Token-77";
    static final String OTHER = "other-secret-value-99";

    @TempDir Path dir;
    SecretStorage store;
    HttpServer server;
    final List<Map<String, List<String>>> received = new CopyOnWriteArrayList<>();
    final List<String> receivedBodies = new CopyOnWriteArrayList<>();
    final List<String> logLines = new CopyOnWriteArrayList<>();
    final Logger logger = Logger.getLogger(ScriptedRestCallNode.class.getName());
    final Handler capture = new Handler() {
        final SimpleFormatter formatter = new SimpleFormatter();

        @Override
        public void publish(LogRecord record) {
            logLines.add(formatter.format(record));
        }

        @Override
        public void flush() {}

        @Override
        public void close() {}
    };

    @BeforeEach
    void open() throws IOException {
        byte[] key = new byte[32];
        new SecureRandom().nextBytes(key);
        store = SecretStorage.open(dir.resolve("tb.db"), SecretStorageOptions.withMasterKey(key));
        store.create(TENANT, "MyApiKey", SecretType.TEXT, VALUE.toCharArray(), "partner API key");
        store.create(TENANT, "OtherKey", SecretType.TEXT, OTHER.toCharArray(), "another node's key");
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/api", exchange -> {
            received.add(Map.copyOf(exchange.getRequestHeaders()));
            receivedBodies.add(new String(exchange.getRequestBody().readAllBytes(), StandardCharsets.UTF_8));
            exchange.sendResponseHeaders(204, -1);
            exchange.close();
        });
        server.start();
        logger.addHandler(capture);
        logger.setLevel(Level.ALL);
    }

    @AfterEach
    void close() {
        logger.removeHandler(capture);
        server.stop(0);
        store.close();
    }

    @Test
    void theScriptNodeRunsTheDocumentationLineInEveryEngine() {
        Map<String, String> out = ScriptNodeExample.run(store, TENANT, "node-1");
        assertEquals(List.of("graaljs", "nashorn", "tbel"), new ArrayList<>(out.keySet()));
        out.forEach((engine, msg) -> {
            assertTrue(msg.contains("\"authorized\":true") && msg.contains("\"temperature\":21.5"), engine + ": " + msg);
            assertFalse(msg.contains(VALUE), msg);
        });
    }

    @Test
    void theRestNodeSendsTheRealHeaderWhileMessageAndLogsHoldTheHandle() throws Exception {
        String script = "console.log('auth header: ' + secretStorage.ref('MyApiKey'));\n"
                + "msg.note = 'sent ' + secretStorage.ref('MyApiKey');\n"
                + "return {msg: msg, metadata: metadata,\n"
                + "        headers: {Authorization: 'Bearer ' + secretStorage.ref('MyApiKey'), 'X-Note': msg.echo}};";
        ByteArrayOutputStream scriptOut = new ByteArrayOutputStream();
        List<ScriptedRestCallNode.Msg> success = new ArrayList<>();
        List<Throwable> failures = new ArrayList<>();
        ScriptedRestCallNode.Output output = new ScriptedRestCallNode.Output() {
            @Override
            public void tellSuccess(ScriptedRestCallNode.Msg msg) {
                success.add(msg);
            }

            @Override
            public void tellFailure(ScriptedRestCallNode.Msg msg, Throwable cause) {
                failures.add(cause);
            }
        };
        URI endpoint = URI.create("http://" + InetAddress.getLoopbackAddress().getHostAddress() + ":"
                + server.getAddress().getPort() + "/api");
        try (GraalJsScripts engine = new GraalJsScripts(scriptOut);
                ScriptedRestCallNode node = new ScriptedRestCallNode(store, TENANT, "rest-node-1", List.of("MyApiKey"),
                        endpoint, script, engine, HttpClient.newBuilder().proxy(HttpClient.Builder.NO_PROXY).build(),
                        Duration.ofSeconds(30))) {
            // The attacker controls the message: it asks the sink for another secret by its handle text.
            node.onMsg(new ScriptedRestCallNode.Msg("POST_TELEMETRY_REQUEST", Map.of("deviceName", "d1"),
                    "{\"temperature\": 20, \"echo\": \"[secret OtherKey]\"}"), output);
        }
        assertEquals(List.of(), failures);
        assertEquals(1, received.size());
        // The loopback server got the real value where the script put the handle ...
        assertEquals(List.of("Bearer " + VALUE), received.get(0).get("Authorization"));
        // ... and the message's handle text for a secret the script never issued stays text.
        assertEquals(List.of("[secret OtherKey]"), received.get(0).get("X-note"));
        // The body is not a sink: it holds the handle's text.
        assertTrue(receivedBodies.get(0).contains("sent [secret MyApiKey]"), receivedBodies.get(0));

        ScriptedRestCallNode.Msg out = success.get(0);
        String everything = out + "\n" + String.join("", logLines) + "\n" + scriptOut.toString(StandardCharsets.UTF_8)
                + "\n" + receivedBodies;
        assertTrue(out.metadata().get("requestHeaders").contains("Bearer [secret MyApiKey]"), out.toString());
        assertTrue(out.data().contains("sent [secret MyApiKey]"), out.data());
        assertEquals("204", out.metadata().get("status"));
        assertTrue(logLines.stream().anyMatch(l -> l.contains("Bearer [secret MyApiKey]")), logLines.toString());
        assertTrue(scriptOut.toString(StandardCharsets.UTF_8).contains("auth header: [secret MyApiKey]"));
        assertFalse(everything.contains(VALUE), everything);
        assertFalse(everything.contains(OTHER), everything);
    }
}
