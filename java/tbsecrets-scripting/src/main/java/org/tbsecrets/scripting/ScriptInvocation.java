package org.tbsecrets.scripting;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.tbsecrets.TypeMismatchException;

/**
 * One run of a rule node's script for one message: owns the {@code secretStorage} object bound
 * into the script ({@link #scriptObject()}) and the registry of the handles that script issued.
 *
 * <p><b>The sink rule.</b> {@link #substitute} replaces {@code [secret NAME]} by the value only
 * for names the script of <em>this</em> invocation passed to {@code secretStorage.ref} (values
 * are read, checked and audited when the handle is issued, and kept here until {@link #close()}
 * wipes them). Any other {@code [secret NAME]} text — for example one an attacker put into the
 * message or its metadata to ask the sink for a secret the script never chose — stays literal
 * text. A sink substitutes only in the fields it sends as credentials (headers), never in data it
 * echoes back into the message.
 *
 * <p>Thread-safe. Close it when the message is done (try-with-resources); a script that keeps a
 * reference gets {@link IllegalStateException} afterwards.
 */
public final class ScriptInvocation implements AutoCloseable {
    private static final Pattern HANDLE = Pattern.compile("\\[secret ([^\\]\\[]{1,255})\\]");

    private final NodeSecrets node;
    private final ScriptSecretStorage scriptObject;
    /** Issued handle name → its value's bytes; guarded by {@code this}; wiped on close. */
    private final Map<String, byte[]> issued = new LinkedHashMap<>();
    private boolean closed;

    ScriptInvocation(NodeSecrets node) {
        this.node = node;
        this.scriptObject = new ScriptSecretStorage(this);
    }

    /**
     * The object to bind as {@code secretStorage} in GraalJS or TBEL (Nashorn:
     * {@link NashornScripts#bind}).
     *
     * @return the script-facing object
     */
    public ScriptSecretStorage scriptObject() {
        return scriptObject;
    }

    /**
     * The rule node this invocation runs for.
     *
     * @return the node
     */
    public NodeSecrets node() {
        return node;
    }

    String getSecret(String name) {
        checkOpen();
        Objects.requireNonNull(name, "name");
        try {
            return node.session().getSecret(node.tenantId(), name);
        } catch (TypeMismatchException e) {
            // A TEXT_FILE secret: its content as strict UTF-8 text.
            byte[] bytes = node.session().getSecretBytes(node.tenantId(), name);
            try {
                return decode(name, bytes);
            } finally {
                Arrays.fill(bytes, (byte) 0);
            }
        }
    }

    SecretHandle ref(String name) {
        checkOpen();
        Objects.requireNonNull(name, "name");
        byte[] value = node.session().getSecretBytes(node.tenantId(), name);
        synchronized (this) {
            if (closed) {
                Arrays.fill(value, (byte) 0);
                throw closedError();
            }
            byte[] old = issued.put(name, value);
            if (old != null) {
                Arrays.fill(old, (byte) 0);
            }
        }
        return new SecretHandle(name);
    }

    /**
     * The sink's substitution (see the class comment): every {@code [secret NAME]} whose NAME this
     * invocation's script issued a handle for becomes the value; any other text is kept as is.
     *
     * @param text a value the sink is about to send, e.g. an HTTP header value
     * @return the text with the issued handles replaced
     * @throws TypeMismatchException if an issued secret is not UTF-8 text
     * @throws IllegalStateException if this invocation is closed
     */
    public synchronized String substitute(String text) {
        checkOpen();
        Objects.requireNonNull(text, "text");
        Matcher m = HANDLE.matcher(text);
        StringBuilder out = new StringBuilder(text.length());
        while (m.find()) {
            byte[] value = issued.get(m.group(1));
            m.appendReplacement(out, "");
            out.append(value == null ? m.group() : decode(m.group(1), value));
        }
        m.appendTail(out);
        return out.toString();
    }

    /**
     * The names this invocation's script issued handles for, in issue order.
     *
     * @return the names
     */
    public synchronized List<String> issuedNames() {
        return List.copyOf(issued.keySet());
    }

    /**
     * Whether this invocation is over.
     *
     * @return true after {@link #close()}
     */
    public synchronized boolean isClosed() {
        return closed;
    }

    /**
     * Ends the invocation: wipes the issued values; the script object stops working. Idempotent.
     */
    @Override
    public void close() {
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            issued.values().forEach(v -> Arrays.fill(v, (byte) 0));
            issued.clear();
        }
        node.invocationClosed(this);
    }

    private synchronized void checkOpen() {
        if (closed) {
            throw closedError();
        }
    }

    private static IllegalStateException closedError() {
        return new IllegalStateException("the script invocation is over: secretStorage can no longer be used");
    }

    private static String decode(String name, byte[] bytes) {
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes))
                    .toString();
        } catch (CharacterCodingException e) {
            throw new TypeMismatchException("secret '" + name + "' is not UTF-8 text", List.of());
        }
    }

    @Override
    public String toString() {
        return "ScriptInvocation[" + node + (isClosed() ? ", closed]" : "]");
    }

    /** For {@link NodeSecrets}: the set type its registry uses. */
    static Set<ScriptInvocation> newSet() {
        return java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
    }
}
