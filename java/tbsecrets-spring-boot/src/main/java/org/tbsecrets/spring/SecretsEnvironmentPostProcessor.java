package org.tbsecrets.spring;

import org.apache.commons.logging.Log;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.env.EnvironmentPostProcessor;
import org.springframework.boot.logging.DeferredLogFactory;
import org.springframework.core.Ordered;
import org.springframework.core.env.ConfigurableEnvironment;

/**
 * Resolves <code>${secret:NAME}</code> (and <code>${secret:NAME;type:TEXT}</code>,
 * <code>;type:TEXT_FILE</code>) placeholders in the values of every property source of a Spring
 * Boot application from a tbsecrets store, before Spring's own placeholder processing sees them,
 * the way jasypt-spring-boot resolves {@code ENC(...)} values. Registered in
 * {@code META-INF/spring.factories}; it runs after the configuration files are loaded.
 *
 * <p>Configured by {@code tbsecrets.store} (the store file), {@code tbsecrets.master-key-file}
 * (else {@code TBS_MASTER_KEY} / {@code TBS_MASTER_KEY_FILE}) and {@code tbsecrets.tenant}, from
 * any property source ({@code application.yml}, {@code TBSECRETS_STORE}, {@code -Dtbsecrets.store}).
 * Each source with placeholders gets a resolved copy of those properties placed just before it
 * (see {@link ResolvedSecrets}); a missing secret fails the start with every offending property
 * and secret named. Sources added later ({@code @PropertySource}) are resolved before any bean is
 * created. The store is closed when the application context closes.
 */
public class SecretsEnvironmentPostProcessor implements EnvironmentPostProcessor, Ordered {
    /** Runs late: after the configuration files and every ordinary post-processor. */
    public static final int ORDER = Ordered.LOWEST_PRECEDENCE - 100;

    private final Log log;

    /**
     * Created by Spring Boot.
     *
     * @param logFactory the factory of logs replayed once logging is set up
     */
    public SecretsEnvironmentPostProcessor(DeferredLogFactory logFactory) {
        this.log = logFactory.getLog(SecretsEnvironmentPostProcessor.class);
    }

    @Override
    public void postProcessEnvironment(ConfigurableEnvironment environment, SpringApplication application) {
        if (!environment.getProperty("tbsecrets.enabled", Boolean.class, true)) {
            return;
        }
        SecretPropertyResolver resolver = new SecretPropertyResolver(environment, log);
        resolver.resolveEnvironment();
        application.addListeners(resolver);
    }

    @Override
    public int getOrder() {
        return ORDER;
    }
}
