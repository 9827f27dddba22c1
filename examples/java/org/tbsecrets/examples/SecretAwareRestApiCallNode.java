package org.tbsecrets.examples;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.tbsecrets.Principal;
import org.tbsecrets.SecretSession;
import org.tbsecrets.SecretStorage;
import org.tbsecrets.SecretStorageException;

/**
 * A ThingsBoard-style REST API call rule node that keeps its configuration with secret
 * placeholders and resolves it each time it is used, so a rotated secret is picked up on the next
 * message without restarting the node. It reads secrets through a {@link SecretSession} acting as
 * the rule engine ({@link Principal#service SERVICE} of the rule chain's tenant, with the node as
 * its id): the default policy lets it resolve its own tenant's secrets and nothing else, and the
 * audit log names the node for every use.
 *
 * <p>It mirrors ThingsBoard's {@code TbNode} life cycle ({@code init}, {@code onMsg},
 * {@code destroy}) with small stand-ins for {@code TbContext} and {@code TbMsg}, and hands the
 * request it would send to a transport instead of opening a connection. Its configuration is
 * ThingsBoard's own {@code TbRestApiCallNode} JSON (see {@code examples/configs/rest_api_call_node.json}):
 *
 * <pre>{@code
 * "headers": { "Authorization": "Bearer ${secret:partner-api-token;type:TEXT}" },
 * "credentials": { "type": "basic", "username": "tb-forwarder", "password": "${secret:partner-basic-password;type:TEXT}" }
 * }</pre>
 */
public final class SecretAwareRestApiCallNode {
    /** What the node needs from the rule engine (a stand-in for ThingsBoard's {@code TbContext}). */
    public interface Context {
        /**
         * The tenant the rule chain belongs to.
         *
         * @return the tenant id (ThingsBoard passes the tenant UUID as text)
         */
        String tenantId();

        /**
         * The node's id.
         *
         * @return the rule node id
         */
        String nodeId();

        /**
         * The process-wide secret store.
         *
         * @return the store
         */
        SecretStorage secretStorage();

        /**
         * Routes a message to the next nodes via the "Success" relation.
         *
         * @param msg the message
         */
        void tellSuccess(Msg msg);

        /**
         * Routes a message via the "Failure" relation.
         *
         * @param msg the message
         * @param cause why
         */
        void tellFailure(Msg msg, Throwable cause);
    }

    /**
     * A rule-engine message (a stand-in for ThingsBoard's {@code TbMsg}).
     *
     * @param type the message type, e.g. {@code POST_TELEMETRY_REQUEST}
     * @param metadata metadata such as {@code deviceName}
     * @param data the JSON payload
     */
    public record Msg(String type, Map<String, String> metadata, String data) {}

    /**
     * The HTTP request the node sends.
     *
     * @param method the HTTP method
     * @param url the URL, with metadata patterns substituted
     * @param headers the headers, secrets included
     * @param basicAuthUser the basic-auth user, or {@code null}
     * @param basicAuthPassword the basic-auth password, or {@code null}
     * @param body the payload
     */
    public record Request(
            String method,
            String url,
            Map<String, String> headers,
            String basicAuthUser,
            String basicAuthPassword,
            String body) {
        /** Never prints header values or the password. */
        @Override
        public String toString() {
            return "Request[" + method + " " + url + ", headers=" + headers.keySet() + "]";
        }
    }

    private static final ObjectMapper MAPPER = new ObjectMapper();
    private static final Pattern METADATA = Pattern.compile("\\$\\{([A-Za-z0-9_]+)}");

    private final Consumer<Request> transport;
    private String configuration;
    private SecretSession secrets;

    /**
     * Creates the node.
     *
     * @param transport sends a request (an HTTP client in ThingsBoard; a recorder in tests)
     */
    public SecretAwareRestApiCallNode(Consumer<Request> transport) {
        this.transport = transport;
    }

    /**
     * Keeps the configuration as it is stored, placeholders included, and records which secrets
     * the node uses (so "where used" is exact and those secrets cannot be deleted by accident —
     * the platform does this as the host, as it saves the rule chain). Opens the node's SERVICE
     * session and fails early if the configuration references a secret that does not exist.
     *
     * @param ctx the rule-engine context
     * @param configurationJson the node's configuration JSON
     */
    public void init(Context ctx, String configurationJson) {
        ctx.secretStorage().trackReferences(ctx.tenantId(), sourceId(ctx), configurationJson);
        SecretSession session = ctx.secretStorage().session(Principal.service(ctx.tenantId()).withId(sourceId(ctx)));
        try {
            session.resolve(ctx.tenantId(), configurationJson); // validate now; the result is not kept
        } catch (RuntimeException e) {
            session.close();
            throw e;
        }
        this.secrets = session;
        this.configuration = configurationJson;
    }

    /**
     * Resolves the configuration at use time, builds the request and sends it.
     *
     * @param ctx the rule-engine context
     * @param msg the incoming message
     */
    public void onMsg(Context ctx, Msg msg) {
        try {
            JsonNode config = MAPPER.readTree(secrets.resolve(ctx.tenantId(), configuration))
                    .path("configuration");
            Map<String, String> headers = new LinkedHashMap<>();
            config.path("headers").properties().forEach(
                    h -> headers.put(h.getKey(), substituteMetadata(h.getValue().asText(), msg)));
            JsonNode credentials = config.path("credentials");
            boolean basic = "basic".equals(credentials.path("type").asText());
            transport.accept(new Request(
                    config.path("requestMethod").asText("POST"),
                    substituteMetadata(config.path("restEndpointUrlPattern").asText(), msg),
                    headers,
                    basic ? credentials.path("username").asText() : null,
                    basic ? credentials.path("password").asText() : null,
                    msg.data()));
            ctx.tellSuccess(msg);
        } catch (SecretStorageException | JsonProcessingException e) {
            ctx.tellFailure(msg, e);
        }
    }

    /**
     * Forgets the node's references when it is removed from its rule chain, and closes its
     * session.
     *
     * @param ctx the rule-engine context
     */
    public void destroy(Context ctx) {
        ctx.secretStorage().untrack(ctx.tenantId(), sourceId(ctx));
        if (secrets != null) {
            secrets.close();
        }
    }

    private static String sourceId(Context ctx) {
        return "rule-node:" + ctx.nodeId();
    }

    /** ThingsBoard's own {@code ${metadataKey}} patterns, which tbsecrets leaves untouched. */
    private static String substituteMetadata(String pattern, Msg msg) {
        Matcher m = METADATA.matcher(pattern);
        StringBuilder out = new StringBuilder();
        while (m.find()) {
            m.appendReplacement(out, Matcher.quoteReplacement(msg.metadata().getOrDefault(m.group(1), m.group())));
        }
        return m.appendTail(out).toString();
    }
}
