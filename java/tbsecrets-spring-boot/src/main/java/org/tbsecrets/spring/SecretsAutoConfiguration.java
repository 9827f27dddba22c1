package org.tbsecrets.spring;

import org.springframework.boot.actuate.endpoint.SanitizableData;
import org.springframework.boot.actuate.endpoint.SanitizingFunction;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionalOnClass;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

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
         * @return the function
         */
        @Bean
        public SanitizingFunction tbsecretsSanitizingFunction() {
            return SecretsAutoConfiguration::sanitize;
        }
    }

    static SanitizableData sanitize(SanitizableData data) {
        if (data.getPropertySource() instanceof ResolvedSecrets resolved) {
            String text = resolved.placeholderText(data.getKey());
            return text != null ? data.withValue(text) : data.withSanitizedValue();
        }
        return data;
    }
}
