package org.tbsecrets.examples.scripting;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.tbsecrets.SecretStorage;
import org.tbsecrets.scripting.GraalJsScripts;
import org.tbsecrets.scripting.NodeSecrets;
import org.tbsecrets.scripting.ScriptInvocation;

/**
 * A REST-call rule node whose request headers come from the node's script, with secrets passed
 * as handles that never print. The script (GraalJS) writes
 *
 * <pre>{@code
 * return {msg: msg, metadata: metadata,
 *         headers: {Authorization: 'Bearer ' + secretStorage.ref('MyApiKey')}};
 * }</pre>
 *
 * <p>and everything that leaves the script — the message, its metadata, the log lines — holds
 * {@code Bearer [secret MyApiKey]}. Only the sink, the HTTP request this node sends, gets the
 * value: {@link ScriptInvocation#substitute} replaces the handles the script issued for this
 * message, in header values only (the body is sent as the script built it). A {@code [secret
 * NAME]} text that came from the message itself is not a handle the script issued and is sent
 * as literal text, so a message cannot ask the node to send a secret.
 *
 * <p>It mirrors ThingsBoard's {@code TbNode} life cycle: construct at init, {@link #onMsg} per
 * message, {@link #close()} at destroy.
 */
public final class ScriptedRestCallNode implements AutoCloseable {
    /** The node's logger (the host's log: it must never see a value). */
    public static final System.Logger LOG = System.getLogger(ScriptedRestCallNode.class.getName());
    private static final ObjectMapper MAPPER = new ObjectMapper();

    /**
     * A rule-engine message (a stand-in for ThingsBoard's {@code TbMsg}).
     *
     * @param type the message type
     * @param metadata the metadata
     * @param data the JSON payload
     */
    public record Msg(String type, Map<String, String> metadata, String data) {}

    /** Where the node routes its messages (a stand-in for {@code TbContext}). */
    public interface Output {
        /**
         * The "Success" relation.
         *
         * @param msg the outgoing message
         */
        void tellSuccess(Msg msg);

        /**
         * The "Failure" relation.
         *
         * @param msg the message
         * @param cause why
         */
        void tellFailure(Msg msg, Throwable cause);
    }

    private final NodeSecrets secrets;
    private final GraalJsScripts engine;
    private final HttpClient http;
    private final URI endpoint;
    private final String script;
    private final Duration timeout;

    /**
     * Initialises the node.
     *
     * @param store the process-wide store
     * @param tenantId the rule chain's tenant
     * @param nodeId the node's id
     * @param allowedNames the node's allow-list, or {@code null}
     * @param endpoint where to send the request
     * @param script the node's script (a function body of {@code msg, metadata, msgType})
     * @param engine the shared GraalJS runner
     * @param http the HTTP client
     * @param timeout the script's time limit
     */
    public ScriptedRestCallNode(SecretStorage store, String tenantId, String nodeId, List<String> allowedNames,
            URI endpoint, String script, GraalJsScripts engine, HttpClient http, Duration timeout) {
        this.secrets = NodeSecrets.open(store, tenantId, nodeId, allowedNames);
        this.engine = Objects.requireNonNull(engine, "engine");
        this.http = Objects.requireNonNull(http, "http");
        this.endpoint = Objects.requireNonNull(endpoint, "endpoint");
        this.script = Objects.requireNonNull(script, "script");
        this.timeout = Objects.requireNonNull(timeout, "timeout");
    }

    /**
     * Runs the script for one message, sends the request and routes the result: on success the
     * script's message with the response status and the request headers as the script wrote
     * them (handle text) in its metadata.
     *
     * @param msg the incoming message
     * @param out where to route it
     */
    public void onMsg(Msg msg, Output out) {
        try (ScriptInvocation inv = secrets.begin()) {
            String result = engine.run(inv, script, msg.data(), MAPPER.writeValueAsString(msg.metadata()), msg.type(), timeout);
            JsonNode r = MAPPER.readTree(result);
            Map<String, String> headers = new LinkedHashMap<>();
            r.path("headers").fields().forEachRemaining(h -> headers.put(h.getKey(), h.getValue().asText()));
            String body = r.path("msg").toString();
            LOG.log(System.Logger.Level.INFO, "POST {0} with headers {1} and body {2}", endpoint, headers, body);

            HttpRequest.Builder request = HttpRequest.newBuilder(endpoint)
                    .timeout(Duration.ofSeconds(30))
                    .POST(HttpRequest.BodyPublishers.ofString(body));
            // The sink: the only place a value is substituted, for this invocation's handles only.
            headers.forEach((name, value) -> request.header(name, inv.substitute(value)));
            HttpResponse<String> response = http.send(request.build(), HttpResponse.BodyHandlers.ofString());
            LOG.log(System.Logger.Level.INFO, "POST {0} answered {1}", endpoint, response.statusCode());

            Map<String, String> metadata = new LinkedHashMap<>(msg.metadata());
            r.path("metadata").fields().forEachRemaining(m -> metadata.put(m.getKey(), m.getValue().asText()));
            metadata.put("status", Integer.toString(response.statusCode()));
            ObjectNode sent = MAPPER.createObjectNode();
            headers.forEach(sent::put);
            metadata.put("requestHeaders", sent.toString());
            out.tellSuccess(new Msg(msg.type(), metadata, body));
        } catch (IOException | RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "REST call failed: {0}", e.getMessage());
            out.tellFailure(msg, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            out.tellFailure(msg, e);
        }
    }

    /** Destroys the node: closes its secrets session. */
    @Override
    public void close() {
        secrets.close();
    }
}
