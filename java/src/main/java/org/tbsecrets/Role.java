package org.tbsecrets;

/**
 * The role a {@link Principal} acts in, as in ThingsBoard. What each role may do is decided by
 * the store's access policy ({@link SecretStorageOptions.Builder#policyJson(String)}); the
 * default policy is:
 *
 * <ul>
 *   <li>{@link #TENANT_ADMIN}: READ, WRITE and DELETE in its own tenant (never values);
 *   <li>{@link #SERVICE}: READ and RESOLVE in its own tenant;
 *   <li>{@link #SYS_ADMIN}: READ, WRITE and DELETE in every tenant (never values), and the
 *       store-wide operations (master-key rotation, audit-log verification);
 *   <li>{@link #CUSTOMER_USER}: nothing.
 * </ul>
 */
public enum Role {
    /** The platform's system administrator. */
    SYS_ADMIN,
    /** A tenant's administrator. */
    TENANT_ADMIN,
    /** A customer's user. */
    CUSTOMER_USER,
    /** The rule engine or an integration. */
    SERVICE;

    /**
     * The number the native library uses for this role (its position in the Rust
     * {@code Role::ALL}).
     *
     * @return the number
     */
    public int number() {
        return ordinal();
    }
}
