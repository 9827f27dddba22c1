package org.tbsecrets;

import java.util.Objects;

/**
 * A {@link SecretStorage} or {@link SecretSession} bound to one tenant: what a rule node or a
 * script gets, so that it can only read its own tenant's secrets —
 * {@code secretStorage.getSecret("MyApiKey")}. It acts as the store or session it came from (a
 * session's policy applies). Thread-safe; valid until that store or session is closed.
 */
public final class TenantSecrets {
    private final SecretOperations store;
    private final String tenantId;
    private final byte[] tenantAscii;

    TenantSecrets(SecretOperations store, String tenantId) {
        this.store = store;
        this.tenantId = tenantId;
        this.tenantAscii = SecretOperations.ascii(tenantId);
    }

    /**
     * The tenant this facade reads.
     *
     * @return the tenant id
     */
    public String tenantId() {
        return tenantId;
    }

    /**
     * The current value of one of the tenant's TEXT secrets.
     *
     * @param name the secret
     * @return the value
     * @throws NotFoundException if there is no such secret
     * @throws TypeMismatchException if it is a TEXT_FILE secret
     */
    public String getSecret(String name) {
        return store.getSecret(tenantAscii, tenantId, Objects.requireNonNull(name, "name"));
    }

    /**
     * A handle on one of the tenant's secrets for repeated reads (see {@link PreparedSecret}).
     *
     * @param name the secret
     * @return a handle, valid until it or the store or session this facade came from is closed
     */
    public PreparedSecret prepareSecret(String name) {
        return store.prepareSecret(tenantId, Objects.requireNonNull(name, "name"));
    }

    /**
     * The current value of one of the tenant's secrets, of either type.
     *
     * @param name the secret
     * @return the value's bytes (wipe them after use)
     * @throws NotFoundException if there is no such secret
     */
    public byte[] getSecretBytes(String name) {
        return store.getSecretBytes(tenantId, Objects.requireNonNull(name, "name"));
    }

    /**
     * Resolves a JSON configuration against the tenant's secrets.
     *
     * @param configJson the JSON document
     * @return the resolved document
     * @throws UnresolvedPlaceholderException if a secret is missing
     */
    public String resolve(String configJson) {
        return store.resolve(tenantId, configJson);
    }

    /**
     * Resolves a JSON document, filling per-message names from the message's metadata; see
     * {@link SecretOperations#resolve(String, String, java.util.Map)}.
     *
     * @param configJson the JSON document
     * @param metadata the message metadata (no null key or value)
     * @return the resolved document
     * @throws UnresolvedPlaceholderException if a secret is missing or a per-message name cannot
     *     be filled or is not allowed
     */
    public String resolve(String configJson, java.util.Map<String, String> metadata) {
        return store.resolve(tenantId, configJson, metadata);
    }

    /**
     * Resolves a plain text against the tenant's secrets.
     *
     * @param text the text
     * @return the resolved text
     * @throws UnresolvedPlaceholderException if a secret is missing
     */
    public String resolveText(String text) {
        return store.resolveText(tenantId, text);
    }

    /**
     * Resolves the scalar values of a YAML document against the tenant's secrets (see {@link
     * SecretOperations#resolveYaml}).
     *
     * @param yaml the YAML document
     * @return the resolved document
     * @throws UnresolvedPlaceholderException if a secret is missing
     * @throws InvalidArgumentException if the document is not YAML
     */
    public String resolveYaml(String yaml) {
        return store.resolveYaml(tenantId, yaml);
    }

    @Override
    public String toString() {
        return "TenantSecrets[" + tenantId + "]";
    }
}
