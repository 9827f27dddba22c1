package org.tbsecrets.spring;

import org.springframework.boot.actuate.endpoint.SanitizableData;
import org.springframework.boot.actuate.endpoint.SanitizingFunction;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionalOnClass;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.env.ConfigurableEnvironment;
import org.springframework.core.env.PropertySource;

/**
 * Keeps resolved secrets out of the actuator: with the actuator on the class path, a
 * {@link SanitizingFunction} shows the placeholder text (<code>${secret:db-password}</code>)
 * instead of every value that came from a {@link ResolvedSecrets} source, in
 * {@code /actuator/env} and {@code /actuator/configprops}, whatever {@code show-values} says.
 */
@AutoConfiguration
public class SecretsAutoConfiguration {
    /** Created by Spring Boot. */
    public SecretsAutoConfiguration() {}

    /** The actuator part, only when the actuator is there. */
    @Configuration(proxyBeanMethods = false)
    @ConditionalOnClass(SanitizingFunction.class)
    public static class Actuator {
        /** Created by Spring Boot. */
        public Actuator() {}

        /**
         * The function that replaces resolved values with their placeholder text.
         *
         * @param environment the application's environment
         * @return the function
         */
        @Bean
        public SanitizingFunction tbsecretsSanitizingFunction(ConfigurableEnvironment environment) {
            return data -> sanitize(environment, data);
        }

        /**
         * A value from a {@link ResolvedSecrets} source becomes its placeholder text (or
         * {@code ******}); so does the raw value of the source it was resolved from, which Spring
         * would otherwise show half-resolved (<code>${secret:x}</code> read as property
         * {@code secret} with default {@code x}).
         */
        static SanitizableData sanitize(ConfigurableEnvironment environment, SanitizableData data) {
            PropertySource<?> source = data.getPropertySource();
            if (source instanceof ResolvedSecrets resolved) {
                String text = resolved.placeholderText(data.getKey());
                return text != null ? data.withValue(text) : data.withSanitizedValue();
            }
            if (source != null && data.getKey() != null
                    && environment.getPropertySources().get(ResolvedSecrets.NAME_PREFIX + source.getName())
                            instanceof ResolvedSecrets resolved) {
                String text = resolved.placeholderText(data.getKey());
                if (text != null) {
                    return data.withValue(text);
                }
            }
            return data;
        }
    }
}
