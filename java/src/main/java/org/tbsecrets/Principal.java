package org.tbsecrets;

import java.util.Objects;

/**
 * Who acts through a {@link SecretSession}: a tenant and a role, plus an optional id (a user or
 * service name) that is written to the audit log and never used for decisions.
 *
 * <p>Every principal belongs to a tenant, the system administrator included: ThingsBoard gives
 * it the system tenant {@link #SYSTEM_TENANT} (its null UUID), which is what {@link #sysAdmin()}
 * uses. Under the default policy a system administrator's grants cover every tenant, so its own
 * tenant only shows in the audit log.
 *
 * <pre>{@code
 * try (SecretSession ruleEngine = store.session(Principal.service(tenantId).withId("rule-node:" + nodeId))) {
 *     String config = ruleEngine.resolve(tenantId, configJson);
 * }
 * }</pre>
 *
 * @param tenantId the tenant the principal belongs to
 * @param role its role
 * @param id who exactly (a user id, a service name), or {@code null}
 */
public record Principal(String tenantId, Role role, String id) {
    /** ThingsBoard's system tenant id (its null UUID), the tenant of {@link #sysAdmin()}. */
    public static final String SYSTEM_TENANT = "13814000-1dd2-11b2-8080-808080808080";

    /**
     * Creates a principal.
     *
     * @param tenantId the tenant the principal belongs to
     * @param role its role
     * @param id who exactly, or {@code null}
     */
    public Principal {
        Objects.requireNonNull(tenantId, "tenantId");
        Objects.requireNonNull(role, "role");
    }

    /**
     * A principal without an id.
     *
     * @param tenantId its tenant
     * @param role its role
     * @return the principal
     */
    public static Principal of(String tenantId, Role role) {
        return new Principal(tenantId, role, null);
    }

    /**
     * The rule engine or an integration of a tenant ({@link Role#SERVICE}).
     *
     * @param tenantId the tenant
     * @return the principal
     */
    public static Principal service(String tenantId) {
        return of(tenantId, Role.SERVICE);
    }

    /**
     * A tenant's administrator ({@link Role#TENANT_ADMIN}).
     *
     * @param tenantId the tenant
     * @return the principal
     */
    public static Principal tenantAdmin(String tenantId) {
        return of(tenantId, Role.TENANT_ADMIN);
    }

    /**
     * A customer's user in a tenant ({@link Role#CUSTOMER_USER}).
     *
     * @param tenantId the tenant
     * @return the principal
     */
    public static Principal customerUser(String tenantId) {
        return of(tenantId, Role.CUSTOMER_USER);
    }

    /**
     * The system administrator ({@link Role#SYS_ADMIN}), in the system tenant
     * {@link #SYSTEM_TENANT}.
     *
     * @return the principal
     */
    public static Principal sysAdmin() {
        return of(SYSTEM_TENANT, Role.SYS_ADMIN);
    }

    /**
     * The same principal with an id for the audit log.
     *
     * @param id a user id or service name
     * @return a new principal
     */
    public Principal withId(String id) {
        return new Principal(tenantId, role, Objects.requireNonNull(id, "id"));
    }
}
