package org.tbsecrets.spring;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.test.system.CapturedOutput;
import org.springframework.boot.test.system.OutputCaptureExtension;
import org.springframework.context.ConfigurableApplicationContext;
import org.tbsecrets.SecretStorage;
import org.tbsecrets.SecretStorageOptions;
import org.tbsecrets.SecretType;
import org.tbsecrets.examples.spring.ExampleApplication;

/** Boots the example of {@code examples/java/spring-boot} with its own application.yml. */
@ExtendWith(OutputCaptureExtension.class)
class ExampleApplicationTest {
    private static final String DB_PASSWORD = "example-DB-pw-93kd";
    private static final String MQTT_PASSWORD = "example-MQTT-pw-x8";

    @TempDir
    Path dir;

    @Test
    void exampleGetsItsSecretsAndNeverLogsThem(CapturedOutput output) {
        byte[] key = new byte[32];
        new SecureRandom().nextBytes(key);
        Path store = dir.resolve("tbsecrets.db");
        Path keyFile = TestStore.writeKey(dir.resolve("tbsecrets.key"), key);
        try (SecretStorage s = SecretStorage.open(store, SecretStorageOptions.withMasterKey(key))) {
            s.create("default", "db-password", SecretType.TEXT, DB_PASSWORD.toCharArray(), "");
            s.create("default", "mqtt-password", SecretType.TEXT, MQTT_PASSWORD.toCharArray(), "");
            s.create("default", "broker-ca", SecretType.TEXT_FILE,
                    TestStore.CA.getBytes(StandardCharsets.UTF_8), "");
        } finally {
            Arrays.fill(key, (byte) 0);
        }
        Path yml = Path.of(System.getProperty("tbsecrets.example.dir", "../../examples/java/spring-boot"),
                "src/main/resources/application.yml");
        // Command-line arguments outrank the example's ${TBSECRETS_STORE:...} defaults.
        try (ConfigurableApplicationContext ctx = SpringApplication.run(ExampleApplication.class,
                "--spring.config.location=file:" + yml.toAbsolutePath(),
                "--spring.main.web-application-type=none",
                "--tbsecrets.store=" + store, "--tbsecrets.master-key-file=" + keyFile, "--tbsecrets.tenant=default")) {
            assertEquals(DB_PASSWORD, ctx.getBean(ExampleApplication.Database.class).password());
            assertEquals(MQTT_PASSWORD, ctx.getBean(ExampleApplication.Broker.class).password());
            assertEquals(TestStore.CA, ctx.getBean(ExampleApplication.Broker.class).caPem());
        }
        String log = output.getAll();
        assertTrue(log.contains("password of " + DB_PASSWORD.length() + " characters"), log);
        assertTrue(log.contains("CA certificate PEM"), log);
        assertFalse(log.contains(DB_PASSWORD));
        assertFalse(log.contains(MQTT_PASSWORD));
    }
}
