package org.tbsecrets.scripting;

import org.graalvm.polyglot.HostAccess;

/**
 * The {@code secretStorage} object a script sees (GraalJS and TBEL; Nashorn gets a
 * {@code JSObject} view of it from {@link NashornScripts}): the two methods of the ThingsBoard
 * documentation and nothing else — no listing, no tenant argument, no way to reach the store.
 *
 * <pre>{@code
 * var apiKey = secretStorage.getSecret('MyApiKey');
 * msg.headers = {Authorization: 'Bearer ' + secretStorage.ref('MyApiKey')};
 * }</pre>
 *
 * <p>It belongs to one {@link ScriptInvocation} (one message through one rule node) and stops
 * working when that invocation is closed.
 */
public final class ScriptSecretStorage {
    private final ScriptInvocation invocation;

    ScriptSecretStorage(ScriptInvocation invocation) {
        this.invocation = invocation;
    }

    /**
     * The value of one of the tenant's secrets: a TEXT secret's value, a TEXT_FILE secret's
     * content as UTF-8 text.
     *
     * @param name the secret's name
     * @return the value
     * @throws org.tbsecrets.NotFoundException if there is no such secret (the message names it)
     * @throws org.tbsecrets.PermissionDeniedException if the node may not read it (audited)
     * @throws org.tbsecrets.TypeMismatchException if a TEXT_FILE secret is not UTF-8 text
     * @throws IllegalStateException if the invocation is over (for example cut off by a timeout)
     */
    @HostAccess.Export
    public String getSecret(String name) {
        return invocation.getSecret(name);
    }

    /**
     * A handle for one of the tenant's secrets, which prints as {@code [secret NAME]} and is
     * replaced by the value only at the host's sink. Checks the secret exists and may be read.
     *
     * @param name the secret's name
     * @return the handle
     * @throws org.tbsecrets.NotFoundException if there is no such secret
     * @throws org.tbsecrets.PermissionDeniedException if the node may not read it (audited)
     * @throws IllegalStateException if the invocation is over
     */
    @HostAccess.Export
    public SecretHandle ref(String name) {
        return invocation.ref(name);
    }

    @HostAccess.Export
    @Override
    public String toString() {
        return "[object SecretStorage]";
    }
}
