package org.tbsecrets.examples.spring;

import org.apache.commons.logging.Log;
import org.apache.commons.logging.LogFactory;
import org.springframework.boot.CommandLineRunner;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.context.annotation.Bean;

/**
 * A Spring Boot application configured like ThingsBoard's {@code thingsboard.yml}: the database
 * password and the MQTT broker's CA certificate are <code>${secret:...}</code> placeholders,
 * resolved from a tbsecrets store by {@code tbsecrets-spring-boot} before Spring sees them. Its
 * beans get the values; logs and {@code /actuator/env} never show them.
 */
@SpringBootApplication
@EnableConfigurationProperties({ExampleApplication.Database.class, ExampleApplication.Broker.class})
public class ExampleApplication {
    private static final Log LOG = LogFactory.getLog(ExampleApplication.class);

    /**
     * {@code spring.datasource.*}, as a datasource binds it.
     *
     * @param url the JDBC URL
     * @param username the user
     * @param password the password (from the secret {@code db-password})
     */
    @ConfigurationProperties("spring.datasource")
    public record Database(String url, String username, String password) {}

    /**
     * {@code broker.*}: an MQTT connection with a TLS CA certificate.
     *
     * @param host the broker
     * @param password the password (from the secret {@code mqtt-password})
     * @param caPem the CA certificate, PEM (from the TEXT_FILE secret {@code broker-ca})
     */
    @ConfigurationProperties("broker")
    public record Broker(String host, String password, String caPem) {}

    /**
     * Starts the application.
     *
     * @param args the command line
     */
    public static void main(String[] args) {
        SpringApplication.run(ExampleApplication.class, args);
    }

    /**
     * Shows what the beans received, without ever printing a value.
     *
     * @param database the database settings
     * @param broker the broker settings
     * @return the runner
     */
    @Bean
    CommandLineRunner report(Database database, Broker broker) {
        return args -> {
            LOG.info("database " + database.url() + " as " + database.username() + ": password of "
                    + database.password().length() + " characters");
            LOG.info("broker " + broker.host() + ": password of " + broker.password().length()
                    + " characters, CA certificate " + (broker.caPem().startsWith("-----BEGIN") ? "PEM" : "not PEM"));
        };
    }
}
