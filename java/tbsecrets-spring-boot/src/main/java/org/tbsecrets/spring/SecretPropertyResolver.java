package org.tbsecrets.spring;

import java.nio.charset.StandardCharsets;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.commons.logging.Log;
import org.springframework.boot.context.event.ApplicationFailedEvent;
import org.springframework.boot.context.event.ApplicationPreparedEvent;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.context.ApplicationEvent;
import org.springframework.context.ApplicationListener;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.context.event.ContextClosedEvent;
import org.springframework.core.env.ConfigurableEnvironment;
import org.springframework.core.env.EnumerablePropertySource;
import org.springframework.core.env.MutablePropertySources;
import org.springframework.core.env.PropertySource;
import org.tbsecrets.ErrorCode;
import org.tbsecrets.InvalidArgumentException;
import org.tbsecrets.PlaceholderProblem;
import org.tbsecrets.Principal;
import org.tbsecrets.SecretSession;
import org.tbsecrets.SecretStorage;
import org.tbsecrets.SecretStorageException;
import org.tbsecrets.SecretStorageOptions;
import org.tbsecrets.TenantSecrets;
import org.tbsecrets.UnresolvedPlaceholderException;

/**
 * Resolves the <code>${secret:...}</code> placeholders of one application's environment and owns
 * the store it reads them from: opened on first need, closed when the application context closes
 * or the start fails. Values are read through a {@code SERVICE} session of the configured tenant,
 * audited as {@code spring:<spring.application.name>}.
 */
final class SecretPropertyResolver implements ApplicationListener<ApplicationEvent> {
    /** The name of the {@link TenantSecrets} bean registered when a store is configured. */
    static final String TENANT_SECRETS_BEAN = "tbsecretsTenantSecrets";

    private final ConfigurableEnvironment environment;
    private final Log log;
    /** Sources already looked at (by identity), so none is resolved twice. */
    private final Set<PropertySource<?>> seen = Collections.newSetFromMap(new IdentityHashMap<>());
    private SecretStorage store;
    private SecretSession session;
    private String tenant;
    private String storeName;
    private ConfigurableApplicationContext context;

    SecretPropertyResolver(ConfigurableEnvironment environment, Log log) {
        this.environment = environment;
        this.log = log;
    }

    /**
     * Opens the store when {@code tbsecrets.store} is set, then resolves every source not seen
     * yet. On failure the store is closed again.
     *
     * @throws UnresolvedPlaceholderException if secrets are missing (every one listed, with its
     *     property)
     * @throws SecretStorageException if the store cannot be opened or a placeholder is malformed
     */
    synchronized void resolveEnvironment() {
        try {
            if (store == null && configured("tbsecrets.store") != null) {
                open();
            }
            resolveNewSources();
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    private String configured(String name) {
        String value = Binder.get(environment).bind(name, String.class).map(String::strip).orElse("");
        return value.isEmpty() ? null : value;
    }

    private void open() {
        storeName = configured("tbsecrets.store");
        tenant = configured("tbsecrets.tenant");
        if (tenant == null) {
            throw new InvalidArgumentException("tbsecrets: tbsecrets.store is set but tbsecrets.tenant is not: "
                    + "set the tenant whose secrets this application's configuration uses", null);
        }
        String keyFile = configured("tbsecrets.master-key-file");
        String app = environment.getProperty("spring.application.name", "application");
        SecretStorageOptions.Builder options = SecretStorageOptions.builder().createIfMissing(false);
        Path path;
        try {
            path = Path.of(storeName);
            if (keyFile != null) {
                options.masterKeyFile(Path.of(keyFile));
            }
        } catch (InvalidPathException e) {
            throw new InvalidArgumentException("tbsecrets: tbsecrets.store or tbsecrets.master-key-file is not a "
                    + "valid path: " + e.getMessage(), null);
        }
        try {
            store = SecretStorage.open(path, options.build());
            session = store.session(Principal.service(tenant).withId("spring:" + app));
        } catch (SecretStorageException e) {
            throw withMessage(e, "tbsecrets: cannot open the secret store '" + storeName + "' (tbsecrets.store"
                    + (keyFile == null ? "; master key from TBS_MASTER_KEY / TBS_MASTER_KEY_FILE"
                            : ", tbsecrets.master-key-file '" + keyFile + "'")
                    + ", tenant '" + tenant + "'): " + e.getMessage());
        }
        log.info("tbsecrets: opened the secret store '" + storeName + "' for tenant '" + tenant + "' as service 'spring:"
                + app + "'");
    }

    private void resolveNewSources() {
        MutablePropertySources sources = environment.getPropertySources();
        List<PropertySource<?>> todo = new ArrayList<>();
        for (PropertySource<?> source : sources) {
            if (!(source instanceof ResolvedSecrets) && seen.add(source)) {
                todo.add(source);
            }
        }
        List<Failure> failures = new ArrayList<>();
        int resolvedCount = 0;
        for (PropertySource<?> source : todo) {
            if (!(source instanceof EnumerablePropertySource<?> enumerable)) {
                continue;
            }
            Map<String, Object> resolved = new LinkedHashMap<>();
            Map<String, String> placeholders = new LinkedHashMap<>();
            for (String name : enumerable.getPropertyNames()) {
                if (source.getProperty(name) instanceof String raw && PlaceholderSplitter.hasPlaceholder(raw)) {
                    if (session == null) {
                        throw new InvalidArgumentException("tbsecrets: property '" + name + "' (" + source.getName()
                                + ") holds a ${secret:...} placeholder, but tbsecrets.store is not set", null);
                    }
                    try {
                        resolved.put(name, resolve(raw));
                        placeholders.put(name, raw);
                    } catch (SecretStorageException e) {
                        if (e.problems().isEmpty()) {
                            throw withMessage(e, "tbsecrets: property '" + name + "' (" + source.getName()
                                    + "): " + e.getMessage());
                        }
                        failures.add(new Failure(name, source.getName(), e));
                    }
                }
            }
            if (!resolved.isEmpty()) {
                sources.addBefore(source.getName(), ResolvedSources.of(source, resolved, placeholders));
                resolvedCount += resolved.size();
            }
        }
        if (!failures.isEmpty()) {
            throw failure(failures);
        }
        if (resolvedCount > 0) {
            log.info("tbsecrets: resolved the secret placeholders of " + resolvedCount + " propert"
                    + (resolvedCount == 1 ? "y" : "ies"));
        }
    }

    /** Resolves the core's pieces of a value and leaves Spring's text as it is. */
    private String resolve(String raw) {
        StringBuilder out = new StringBuilder(raw.length() + 32);
        List<PlaceholderProblem> problems = new ArrayList<>();
        SecretStorageException first = null;
        long offset = 0;
        for (PlaceholderSplitter.Piece piece : PlaceholderSplitter.split(raw)) {
            if (!piece.core()) {
                out.append(piece.text());
            } else {
                try {
                    out.append(PlaceholderSplitter.protectFromSpring(session.resolveText(tenant, piece.text())));
                } catch (SecretStorageException e) {
                    if (first == null || e instanceof UnresolvedPlaceholderException) {
                        first = e;
                    }
                    for (PlaceholderProblem p : e.problems()) {
                        problems.add(new PlaceholderProblem(p.code(), p.name(), offset + p.offset(), p.reason()));
                    }
                    if (e.problems().isEmpty()) {
                        throw e;
                    }
                }
            }
            offset += piece.text().getBytes(StandardCharsets.UTF_8).length;
        }
        if (first != null) {
            RuntimeException e = SecretStorageException.of(first.code(), first.getMessage(), problems);
            throw (SecretStorageException) e;
        }
        return out.toString();
    }

    private record Failure(String property, String source, SecretStorageException error) {}

    private RuntimeException failure(List<Failure> failures) {
        List<PlaceholderProblem> problems = new ArrayList<>();
        ErrorCode code = null;
        StringBuilder message = new StringBuilder("tbsecrets: the secret placeholders of ")
                .append(failures.size()).append(failures.size() == 1 ? " property" : " properties")
                .append(" cannot be resolved in tenant '").append(tenant).append("' of store '").append(storeName)
                .append("':");
        for (Failure f : failures) {
            SecretStorageException e = f.error();
            if (code == null || e.code() == ErrorCode.UNRESOLVED) {
                code = e.code();
            }
            for (PlaceholderProblem p : e.problems()) {
                problems.add(p);
                message.append("\n  property '").append(f.property()).append("' (").append(f.source())
                        .append("): secret '").append(p.name()).append("': ").append(describe(p));
            }
        }
        return SecretStorageException.of(code, message.toString(), problems);
    }

    private static String describe(PlaceholderProblem p) {
        if (p.code() == ErrorCode.NOT_FOUND) {
            return "not found";
        }
        return p.code() + (p.reason() == null || p.reason().isEmpty() ? "" : " (" + p.reason() + ")");
    }

    private static SecretStorageException withMessage(SecretStorageException e, String message) {
        RuntimeException out = SecretStorageException.of(e.code(), message, e.problems());
        out.initCause(e);
        return out instanceof SecretStorageException s ? s : e;
    }

    @Override
    public void onApplicationEvent(ApplicationEvent event) {
        if (event instanceof ApplicationPreparedEvent prepared
                && prepared.getApplicationContext().getEnvironment() == environment) {
            prepared(prepared.getApplicationContext());
        } else if (event instanceof ContextClosedEvent closed && closed.getApplicationContext() == context) {
            close();
        } else if (event instanceof ApplicationFailedEvent failed
                && (failed.getApplicationContext() == null || failed.getApplicationContext() == context)) {
            close();
        }
    }

    private synchronized void prepared(ConfigurableApplicationContext ctx) {
        if (context != null) {
            return;
        }
        context = ctx;
        // Sources added while the context is refreshed (@PropertySource) are resolved before any
        // bean is created and before Spring's own placeholder configurer runs.
        ctx.addBeanFactoryPostProcessor(beanFactory -> resolveEnvironment());
        if (session != null) {
            ctx.getBeanFactory().registerSingleton(TENANT_SECRETS_BEAN, session.forTenant(tenant));
        }
    }

    /** Closes the session and the store; idempotent. */
    synchronized void close() {
        if (session != null) {
            session.close();
        }
        if (store != null) {
            store.close();
            log.debug("tbsecrets: closed the secret store '" + storeName + "'");
        }
        session = null;
        store = null;
    }

    /**
     * Whether the store is open (for tests).
     *
     * @return whether a store is open
     */
    synchronized boolean isOpen() {
        return store != null;
    }
}
