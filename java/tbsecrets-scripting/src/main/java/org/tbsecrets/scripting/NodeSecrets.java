package org.tbsecrets.scripting;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import org.tbsecrets.Principal;
import org.tbsecrets.SecretSession;
import org.tbsecrets.SecretStorage;

/**
 * The secrets of one script rule node: a {@link SecretSession} acting as the
 * {@link Principal#service SERVICE} principal of the rule chain's tenant with the id
 * {@code rule-node:<nodeId>} (the audit log names the node for every use and every denial), so
 * the node's scripts can read that tenant's secrets and nothing else. Each message runs in its own
 * {@link #begin() invocation}.
 *
 * <pre>{@code
 * try (NodeSecrets node = NodeSecrets.open(store, tenantId, nodeId)) {       // at node init
 *     try (ScriptInvocation inv = node.begin()) {                            // per message
 *         String out = graalJs.run(inv, script, msgJson, metadataJson, msgType, timeout);
 *     }
 * }
 * }</pre>
 *
 * <p>Thread-safe. {@link #close()} (at node destroy) ends the open invocations and closes the
 * session; the store stays open.
 */
public final class NodeSecrets implements AutoCloseable {
    private final SecretSession session;
    private final String tenantId;
    private final String nodeId;
    private final Set<ScriptInvocation> open = ScriptInvocation.newSet();

    private NodeSecrets(SecretSession session, String tenantId, String nodeId) {
        this.session = session;
        this.tenantId = tenantId;
        this.nodeId = nodeId;
    }

    /**
     * Opens the secrets of a rule node, without an allow-list (the node may read every secret of
     * its tenant the store's policy lets the rule engine read; see
     * {@link #open(SecretStorage, String, String, List)} for least privilege).
     *
     * @param store the process-wide store
     * @param tenantId the rule chain's tenant
     * @param nodeId the rule node's id
     * @return the node's secrets
     * @throws org.tbsecrets.InvalidArgumentException if the tenant id is not a valid tenant id
     */
    public static NodeSecrets open(SecretStorage store, String tenantId, String nodeId) {
        Objects.requireNonNull(store, "store");
        Principal principal = principal(tenantId, nodeId);
        return new NodeSecrets(store.session(principal), tenantId, nodeId);
    }

    /**
     * Opens the secrets of a rule node restricted to a per-node allow-list (least privilege):
     * exact names and glob patterns ({@code *} any run of characters, {@code ?} one character,
     * over the whole name). A script asking for any other name gets a script error, and the
     * store audits the denial as this node.
     *
     * @param store the process-wide store
     * @param tenantId the rule chain's tenant
     * @param nodeId the rule node's id
     * @param allowedNames the entries; {@code null}: not restricted; an empty list: nothing
     * @return the node's secrets
     * @throws org.tbsecrets.InvalidArgumentException if the tenant id or an entry is invalid
     */
    public static NodeSecrets open(SecretStorage store, String tenantId, String nodeId, List<String> allowedNames) {
        Objects.requireNonNull(store, "store");
        Principal principal = principal(tenantId, nodeId);
        return new NodeSecrets(store.session(principal, allowedNames), tenantId, nodeId);
    }

    /**
     * The principal a node's scripts act as.
     *
     * @param tenantId the rule chain's tenant
     * @param nodeId the rule node's id
     * @return {@code SERVICE} of the tenant, id {@code rule-node:<nodeId>}
     */
    public static Principal principal(String tenantId, String nodeId) {
        Objects.requireNonNull(tenantId, "tenantId");
        Objects.requireNonNull(nodeId, "nodeId");
        return Principal.service(tenantId).withId("rule-node:" + nodeId);
    }

    /**
     * Starts the run of the node's script for one message.
     *
     * @return the invocation (close it when the message is done)
     * @throws IllegalStateException if this node's secrets are closed
     */
    public ScriptInvocation begin() {
        synchronized (open) {
            if (session.isClosed()) {
                throw new IllegalStateException("the rule node's secrets are closed");
            }
            ScriptInvocation inv = new ScriptInvocation(this);
            open.add(inv);
            return inv;
        }
    }

    /**
     * How many invocations are open (started and not yet closed): 0 once every message is done.
     *
     * @return the count
     */
    public int openInvocations() {
        synchronized (open) {
            return open.size();
        }
    }

    /**
     * The rule chain's tenant.
     *
     * @return the tenant id
     */
    public String tenantId() {
        return tenantId;
    }

    /**
     * The rule node's id.
     *
     * @return the node id
     */
    public String nodeId() {
        return nodeId;
    }

    /**
     * Whether {@link #close()} was called (or the store was closed).
     *
     * @return true when closed
     */
    public boolean isClosed() {
        return session.isClosed();
    }

    SecretSession session() {
        return session;
    }

    void invocationClosed(ScriptInvocation inv) {
        synchronized (open) {
            open.remove(inv);
        }
    }

    /** Ends the open invocations and closes the node's session. Idempotent. */
    @Override
    public void close() {
        List<ScriptInvocation> left;
        synchronized (open) {
            left = new ArrayList<>(open);
        }
        left.forEach(ScriptInvocation::close);
        session.close();
    }

    @Override
    public String toString() {
        return "NodeSecrets[rule-node:" + nodeId + " of " + tenantId + (isClosed() ? ", closed]" : "]");
    }
}
