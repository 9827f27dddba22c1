package org.tbsecrets.spring;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.boot.test.system.CapturedOutput;
import org.springframework.boot.test.system.OutputCaptureExtension;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.core.env.StandardEnvironment;
import org.springframework.core.env.SystemEnvironmentPropertySource;
import org.tbsecrets.ErrorCode;
import org.tbsecrets.InvalidArgumentException;
import org.tbsecrets.MalformedPlaceholderException;
import org.tbsecrets.PlaceholderProblem;
import org.tbsecrets.SecretStorageException;
import org.tbsecrets.TenantSecrets;
import org.tbsecrets.UnresolvedPlaceholderException;
import org.tbsecrets.WrongMasterKeyException;
import org.tbsecrets.spring.app.TestApplication;
import org.tbsecrets.spring.app.TestApplication.AppSettings;
import org.tbsecrets.spring.app.TestApplication.DataSourceSettings;
import org.tbsecrets.spring.app.TestApplication.PasswordHolder;

/** Boots {@link TestApplication} (its application.yml holds the placeholders) against a real store. */
@ExtendWith(OutputCaptureExtension.class)
class SpringBootSecretsTest {
    @TempDir
    Path dir;

    private static SpringApplicationBuilder app(Map<String, Object> properties) {
        return new SpringApplicationBuilder(TestApplication.class)
                .web(WebApplicationType.NONE)
                .properties(properties);
    }

    private ConfigurableApplicationContext run(TestStore store) {
        return app(store.properties()).run();
    }

    @Test
    void datasourcePasswordFromApplicationYmlReachesTheBeans() throws IOException {
        TestStore store = TestStore.create(dir);
        TenantSecrets secrets;
        try (ConfigurableApplicationContext ctx = run(store)) {
            assertEquals(TestStore.DB_PASSWORD, ctx.getBean(DataSourceSettings.class).password());
            assertEquals("jdbc:postgresql://db.local:5432/thingsboard", ctx.getBean(DataSourceSettings.class).url());
            assertEquals(TestStore.DB_PASSWORD, ctx.getBean(PasswordHolder.class).password());
            assertEquals(TestStore.DB_PASSWORD, ctx.getEnvironment().getProperty("spring.datasource.password"));
            secrets = ctx.getBean(SecretPropertyResolver.TENANT_SECRETS_BEAN, TenantSecrets.class);
            assertEquals(TestStore.TENANT, secrets.tenantId());
            assertEquals(TestStore.PW, secrets.getSecret("pw"));
        }
        // Closing the context closed the store.
        assertThrows(IllegalStateException.class, () -> secrets.getSecret("pw"));
        // The reads were audited as the application's SERVICE principal; the log holds no value.
        String audit = Files.readString(store.auditLog());
        assertTrue(audit.contains("spring:spring-boot-test"), audit);
        assertTrue(audit.contains("SERVICE"), audit);
        assertTrue(audit.contains("db-password"), audit);
        assertFalse(audit.contains(TestStore.DB_PASSWORD));
    }

    @Test
    void aFailedStartClosesTheStore() {
        Map<String, Object> properties = TestStore.create(dir).properties();
        properties.put("app.fail-on-start", "true");
        TestApplication.lastSecrets = null;
        assertThrows(RuntimeException.class, () -> app(properties).run().close());
        TenantSecrets secrets = TestApplication.lastSecrets;
        assertEquals(TestStore.TENANT, secrets.tenantId());
        assertThrows(IllegalStateException.class, () -> secrets.getSecret("pw"));
    }

    @Test
    void everyMissingSecretIsNamedWithItsProperty() {
        TestStore store = TestStore.create(dir);
        UnresolvedPlaceholderException e = assertThrows(UnresolvedPlaceholderException.class,
                () -> app(store.properties()).properties("spring.config.name=missing").run().close());
        String message = e.getMessage();
        assertTrue(message.contains("spring.datasource.password"), message);
        assertTrue(message.contains("db-password-missing"), message);
        assertTrue(message.contains("app.url"), message);
        assertTrue(message.contains("token-missing"), message);
        assertFalse(message.contains("app.literal"), message);
        assertFalse(message.contains(TestStore.PW), message);
        assertFalse(message.contains(TestStore.DB_PASSWORD), message);
        assertEquals(ErrorCode.UNRESOLVED, e.code());
        assertEquals(Set.of("db-password-missing", "token-missing"),
                e.problems().stream().map(PlaceholderProblem::name).collect(Collectors.toSet()));
        // The offset is the placeholder's byte offset within the property's value.
        PlaceholderProblem token = e.problems().stream().filter(p -> p.name().equals("token-missing")).findFirst()
                .orElseThrow();
        assertEquals("jdbc:postgresql://h/db?password=${secret:pw}&token=".length(), token.offset());
    }

    @Test
    void malformedPlaceholderFailsTheStartNamingTheProperty() {
        Map<String, Object> properties = TestStore.create(dir).properties();
        properties.put("app.broken", "x${secret:never-closed");
        MalformedPlaceholderException e = assertThrows(MalformedPlaceholderException.class,
                () -> app(properties).run().close());
        assertTrue(e.getMessage().contains("app.broken"), e.getMessage());
        assertEquals(ErrorCode.MALFORMED_PLACEHOLDER, e.code());
        assertEquals(1, e.problems().get(0).offset(), "the offset counts from the start of the value");
    }

    @Test
    void typeMismatchFailsTheStart() {
        Map<String, Object> properties = TestStore.create(dir).properties();
        properties.put("app.wrong-type", "${secret:db-password;type:TEXT_FILE}");
        SecretStorageException e = assertThrows(SecretStorageException.class, () -> app(properties).run().close());
        assertTrue(e.getMessage().contains("app.wrong-type"), e.getMessage());
        assertTrue(e.getMessage().contains("db-password"), e.getMessage());
        assertFalse(e.getMessage().contains(TestStore.DB_PASSWORD));
        assertEquals(ErrorCode.TYPE_MISMATCH, e.code());
    }

    @Test
    void textFileSecretIsItsText() {
        try (ConfigurableApplicationContext ctx = run(TestStore.create(dir))) {
            assertEquals(TestStore.CA, ctx.getBean(AppSettings.class).ca());
        }
    }

    @Test
    void escapeGivesTheLiteralTextAndValuesAreNeverSpringPlaceholders() {
        try (ConfigurableApplicationContext ctx = run(TestStore.create(dir))) {
            AppSettings app = ctx.getBean(AppSettings.class);
            assertEquals("${secret:db-password}", app.literal());
            assertEquals("${secret:db-password}", ctx.getEnvironment().getProperty("app.literal"));
            // A value holding ${x} is taken as it is, not as a Spring placeholder.
            assertEquals(TestStore.DOLLAR, app.dollar());
            assertEquals(TestStore.DOLLAR, ctx.getEnvironment().getProperty("app.dollar"));
        }
    }

    @Test
    void valueMixingTextSpringPlaceholdersAndSecrets() {
        try (ConfigurableApplicationContext ctx = run(TestStore.create(dir))) {
            assertEquals("jdbc:postgresql://db.local/db?password=" + TestStore.PW,
                    ctx.getBean(AppSettings.class).url());
            // ThingsBoard's ${ENV_VARIABLE:default} with a secret as the default.
            assertEquals(TestStore.PW, ctx.getEnvironment().getProperty("app.tb-style"));
        }
    }

    @Test
    void propertySourceAnnotationFilesAreResolvedToo() {
        try (ConfigurableApplicationContext ctx = run(TestStore.create(dir))) {
            assertEquals("from-property-source:" + TestStore.PW, ctx.getBean(AppSettings.class).extra());
        }
    }

    @Test
    void relaxedBindingFromEnvironmentVariablesWhichAlsoConfigureTheStore() {
        TestStore store = TestStore.create(dir);
        Map<String, Object> variables = new HashMap<>();
        variables.put("TBSECRETS_STORE", store.store.toString());
        variables.put("TBSECRETS_MASTERKEYFILE", store.keyFile.toString());
        variables.put("TBSECRETS_TENANT", TestStore.TENANT);
        variables.put("APP_APITOKEN", "Bearer ${secret:api-token}");
        variables.put("SPRING_DATASOURCE_USERNAME", "${secret:pw}");
        StandardEnvironment environment = new StandardEnvironment();
        environment.getPropertySources().replace(StandardEnvironment.SYSTEM_ENVIRONMENT_PROPERTY_SOURCE_NAME,
                new SystemEnvironmentPropertySource(StandardEnvironment.SYSTEM_ENVIRONMENT_PROPERTY_SOURCE_NAME,
                        variables));
        try (ConfigurableApplicationContext ctx = new SpringApplicationBuilder(TestApplication.class)
                .web(WebApplicationType.NONE).environment(environment).run()) {
            assertEquals("Bearer " + TestStore.API_TOKEN, ctx.getBean(AppSettings.class).apiToken());
            assertEquals("Bearer " + TestStore.API_TOKEN, ctx.getEnvironment().getProperty("app.api-token"));
            // The environment variable wins over application.yml, as without placeholders.
            assertEquals(TestStore.PW, ctx.getBean(DataSourceSettings.class).username());
            assertEquals(TestStore.DB_PASSWORD, ctx.getBean(DataSourceSettings.class).password());
        }
    }

    @Test
    void wrongMasterKeyFailsTheStart() {
        TestStore store = TestStore.create(dir);
        byte[] other = new byte[32];
        new SecureRandom().nextBytes(other);
        Path wrong = TestStore.writeKey(dir.resolve("wrong.key"), other);
        Map<String, Object> properties = store.properties();
        properties.put("tbsecrets.master-key-file", wrong.toString());
        WrongMasterKeyException e = assertThrows(WrongMasterKeyException.class, () -> app(properties).run().close());
        assertTrue(e.getMessage().contains(store.store.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("wrong.key"), e.getMessage());
    }

    @Test
    void missingStoreFailsTheStart() {
        TestStore store = TestStore.create(dir);
        Map<String, Object> properties = store.properties();
        String missing = dir.resolve("no-such-store.db").toString();
        properties.put("tbsecrets.store", missing);
        SecretStorageException e = assertThrows(SecretStorageException.class, () -> app(properties).run().close());
        assertTrue(e.getMessage().contains(missing), e.getMessage());
        assertFalse(Files.exists(Path.of(missing)), "the store is never created");
    }

    @Test
    void placeholdersWithoutAStoreFailTheStart() {
        InvalidArgumentException e = assertThrows(InvalidArgumentException.class,
                () -> app(Map.of()).run().close());
        assertTrue(e.getMessage().contains("tbsecrets.store"), e.getMessage());
        assertEquals(ErrorCode.INVALID_ARGUMENT, e.code());
    }

    @Test
    void aStoreWithoutATenantFailsTheStart() {
        Map<String, Object> properties = TestStore.create(dir).properties();
        properties.remove("tbsecrets.tenant");
        InvalidArgumentException e = assertThrows(InvalidArgumentException.class, () -> app(properties).run().close());
        assertTrue(e.getMessage().contains("tbsecrets.tenant"), e.getMessage());
    }

    @Test
    void theStartupLogNeverHoldsAValue(CapturedOutput output) {
        Map<String, Object> properties = TestStore.create(dir).properties();
        properties.put("logging.level.org.tbsecrets", "TRACE");
        properties.put("logging.level.org.springframework.boot", "DEBUG");
        properties.put("logging.level.org.springframework.core.env", "TRACE");
        properties.put("debug", "true");
        try (ConfigurableApplicationContext ctx = app(properties).run()) {
            assertEquals(TestStore.DB_PASSWORD, ctx.getBean(DataSourceSettings.class).password());
        }
        String log = output.getAll();
        assertTrue(log.contains("tbsecrets: resolved the secret placeholders of"), log);
        for (String value : List.of(TestStore.DB_PASSWORD, TestStore.PW, TestStore.API_TOKEN, "MIIBcaFixtureOnly")) {
            assertFalse(log.contains(value), "the log holds a secret value");
        }
    }

    @Test
    void actuatorShowsPlaceholdersNeverValues() throws Exception {
        Map<String, Object> properties = TestStore.create(dir).properties();
        properties.put("server.port", "0");
        properties.put("management.endpoints.web.exposure.include", "env,configprops");
        properties.put("management.endpoint.env.show-values", "ALWAYS");
        properties.put("management.endpoint.configprops.show-values", "ALWAYS");
        try (ConfigurableApplicationContext ctx = app(properties).web(WebApplicationType.SERVLET).run()) {
            assertEquals(TestStore.DB_PASSWORD, ctx.getBean(DataSourceSettings.class).password());
            String base = "http://127.0.0.1:" + ctx.getEnvironment().getProperty("local.server.port");
            HttpClient http = HttpClient.newHttpClient();
            for (String path : List.of("/actuator/env", "/actuator/env/spring.datasource.password",
                    "/actuator/env/app.url", "/actuator/configprops")) {
                HttpResponse<String> response = http.send(HttpRequest.newBuilder(URI.create(base + path)).build(),
                        HttpResponse.BodyHandlers.ofString());
                assertEquals(200, response.statusCode(), path);
                String body = response.body();
                for (String value : List.of(TestStore.DB_PASSWORD, TestStore.PW, "MIIBcaFixtureOnly")) {
                    assertFalse(body.contains(value), path + " shows a secret value");
                }
                if (path.startsWith("/actuator/env")) {
                    assertTrue(body.contains(ResolvedSecrets.NAME_PREFIX), path + ": " + body);
                }
            }
            String env = http.send(HttpRequest.newBuilder(URI.create(base + "/actuator/env/spring.datasource.password"))
                    .build(), HttpResponse.BodyHandlers.ofString()).body();
            // The summary, the resolved source and the original all show the placeholder text.
            assertEquals(3, env.split(Pattern.quote("\"value\":\"${secret:db-password}\""), -1).length - 1, env);
            String configprops = http.send(HttpRequest.newBuilder(URI.create(base + "/actuator/configprops"))
                    .build(), HttpResponse.BodyHandlers.ofString()).body();
            assertTrue(configprops.contains("\"password\":\"${secret:db-password}\""), configprops);
            // Not a secret: still shown.
            String url = http.send(HttpRequest.newBuilder(URI.create(base + "/actuator/env/spring.datasource.url"))
                    .build(), HttpResponse.BodyHandlers.ofString()).body();
            assertTrue(url.contains("jdbc:postgresql://db.local:5432/thingsboard"), url);
        }
    }

    @Test
    void disabledLeavesPlaceholdersToSpring() {
        Map<String, Object> properties = TestStore.create(dir).properties();
        properties.put("tbsecrets.enabled", "false");
        try (ConfigurableApplicationContext ctx = app(properties).run()) {
            // Spring reads ${secret:db-password} as property "secret" with default "db-password".
            assertEquals("db-password", ctx.getBean(DataSourceSettings.class).password());
            assertFalse(ctx.containsBean(SecretPropertyResolver.TENANT_SECRETS_BEAN));
        }
    }
}
