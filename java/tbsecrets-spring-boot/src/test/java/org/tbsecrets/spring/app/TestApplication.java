package org.tbsecrets.spring.app;

import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.autoconfigure.condition.ConditionalOnProperty;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.PropertySource;
import org.tbsecrets.TenantSecrets;

/** The small application the tests boot: its configuration is in application.yml. */
@SpringBootApplication
@EnableConfigurationProperties({TestApplication.DataSourceSettings.class, TestApplication.AppSettings.class})
@PropertySource("classpath:extra.properties")
public class TestApplication {
    /**
     * Binds {@code spring.datasource.*} as a datasource would.
     *
     * @param url the JDBC URL
     * @param username the user
     * @param password the password
     */
    @ConfigurationProperties("spring.datasource")
    public record DataSourceSettings(String url, String username, String password) {}

    /**
     * Binds {@code app.*}.
     *
     * @param url a URL mixing text, a Spring placeholder and a secret
     * @param literal an escaped placeholder
     * @param dollar a secret whose value looks like a Spring placeholder
     * @param ca a TEXT_FILE secret
     * @param apiToken a secret from an environment variable (relaxed binding)
     * @param extra a secret from a {@code @PropertySource} file
     */
    @ConfigurationProperties("app")
    public record AppSettings(String url, String literal, String dollar, String ca, String apiToken, String extra) {}

    /** A bean taking the password through {@code @Value}. */
    public static final class PasswordHolder {
        private final String password;

        PasswordHolder(String password) {
            this.password = password;
        }

        /**
         * The injected password.
         *
         * @return it
         */
        public String password() {
            return password;
        }
    }

    /** The {@code TenantSecrets} bean seen by the last {@link #failing} bean (for tests). */
    public static volatile TenantSecrets lastSecrets;

    @Bean
    @ConditionalOnProperty("app.fail-on-start")
    Object failing(TenantSecrets secrets) {
        lastSecrets = secrets;
        throw new IllegalStateException("this application fails to start, as asked");
    }

    @Bean
    PasswordHolder passwordHolder(@Value("${spring.datasource.password}") String password) {
        return new PasswordHolder(password);
    }
}
