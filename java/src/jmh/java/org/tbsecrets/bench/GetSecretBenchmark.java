package org.tbsecrets.bench;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.Comparator;
import java.util.concurrent.TimeUnit;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.tbsecrets.SecretStorage;
import org.tbsecrets.SecretStorageOptions;
import org.tbsecrets.SecretType;
import org.tbsecrets.Principal;
import org.tbsecrets.PreparedSecret;
import org.tbsecrets.SecretSession;
import org.tbsecrets.TenantSecrets;

/**
 * {@code getSecret(tenantId, name)} of a 32-byte TEXT secret through JNI, against two pure-Java
 * baselines that hold the same secret sealed with AES-256-GCM (same AAD length as tbsecrets):
 *
 * <ul>
 *   <li>{@code baselineThingsBoard}: a map lookup, then {@code Cipher.getInstance("AES/GCM/NoPadding")}
 *       per call, as ThingsBoard decrypts;
 *   <li>{@code baselineReusedCipher}: the best hand-tuned pure Java: one {@code Cipher} per thread,
 *       re-initialised per call, decrypting into a reused buffer.
 * </ul>
 *
 * Also {@code tbsecretsPrepared} / {@code tbsecretsServicePrepared}: the same read through a kept
 * {@link PreparedSecret} (host, and a SERVICE session's). SampleTime gives the median and p99.
 */
@State(Scope.Benchmark)
@BenchmarkMode({Mode.AverageTime, Mode.SampleTime})
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class GetSecretBenchmark {
    static final String TENANT = "13814000-1dd2-11b2-8080-808080808080";
    static final String NAME = "partner-api-token";
    static final byte[] VALUE = "tok_9f8e7d6c5b4a39281706f5e4d3c2".getBytes(StandardCharsets.US_ASCII); // 32 bytes

    Path dir;
    SecretStorage store;
    TenantSecrets tenant;
    SecretSession ruleEngine;
    PreparedSecret handle;
    PreparedSecret ruleEnginePrepared;
    SecretStorage unaudited;
    ThingsBoardSecrets thingsBoard;

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        if (VALUE.length != 32) {
            throw new IllegalStateException("the value must be 32 bytes");
        }
        dir = Files.createTempDirectory("tbsecrets-bench");
        byte[] master = new byte[32];
        new SecureRandom().nextBytes(master);
        store = SecretStorage.open(dir.resolve("bench.db"), SecretStorageOptions.withMasterKey(master));
        store.create(TENANT, NAME, SecretType.TEXT, VALUE, "");
        tenant = store.forTenant(TENANT);
        ruleEngine = store.session(Principal.service(TENANT).withId("rule-node:bench"));
        handle = store.prepareSecret(TENANT, NAME);
        ruleEnginePrepared = ruleEngine.prepareSecret(TENANT, NAME);
        unaudited = SecretStorage.open(dir.resolve("unaudited.db"),
                SecretStorageOptions.builder().masterKey(master).auditEnabled(false).build());
        unaudited.create(TENANT, NAME, SecretType.TEXT, VALUE, "");

        thingsBoard = new ThingsBoardSecrets();
        thingsBoard.put(TENANT, NAME, new String(VALUE, StandardCharsets.UTF_8));
        if (!new String(VALUE, StandardCharsets.UTF_8).equals(tbsecrets())) {
            throw new IllegalStateException("tbsecrets returned another value");
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() throws Exception {
        unaudited.close();
        store.close();
        try (var files = Files.walk(dir)) {
            files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }

    /** Per-thread state of the hand-tuned baseline. */
    @State(Scope.Thread)
    public static class ReusedCipher {
        Cipher cipher;
        final byte[] out = new byte[256];

        @Setup(Level.Trial)
        public void setUp() throws GeneralSecurityException {
            cipher = Cipher.getInstance("AES/GCM/NoPadding");
        }
    }

    @Benchmark
    public String tbsecrets() {
        return store.getSecret(TENANT, NAME);
    }

    /** The same call on a store without an audit log (the baseline of the audit's cost). */
    @Benchmark
    @BenchmarkMode(Mode.AverageTime) // an average is all the report shows of it
    public String tbsecretsAuditOff() {
        return unaudited.getSecret(TENANT, NAME);
    }

    /** The rule engine's way: a SERVICE session (policy check and batched audit record). */
    @Benchmark
    public String tbsecretsServiceSession() {
        return ruleEngine.getSecret(TENANT, NAME);
    }

    /** A {@link PreparedSecret} kept per (tenant, name), as a rule node keeps it. */
    @Benchmark
    @BenchmarkMode(Mode.AverageTime) // an average is all the report shows of it
    public String tbsecretsPrepared() {
        return handle.get();
    }

    /** The rule engine's way with a kept handle: a SERVICE session's {@link PreparedSecret}. */
    @Benchmark
    @BenchmarkMode(Mode.AverageTime) // an average is all the report shows of it
    public String tbsecretsServicePrepared() {
        return ruleEnginePrepared.get();
    }

    @Benchmark
    public String tbsecretsTenantFacade() {
        return tenant.getSecret(NAME);
    }

    @Benchmark
    public String baselineThingsBoard() {
        return thingsBoard.getSecret(TENANT, NAME);
    }

    @Benchmark
    public String baselineReusedCipher(ReusedCipher state) throws GeneralSecurityException {
        ThingsBoardSecrets.Sealed s = thingsBoard.sealed.get(TENANT).get(NAME);
        Cipher cipher = state.cipher;
        cipher.init(Cipher.DECRYPT_MODE, thingsBoard.key, new GCMParameterSpec(128, s.iv()));
        cipher.updateAAD(s.aad());
        int n = cipher.doFinal(s.ciphertext(), 0, s.ciphertext().length, state.out, 0);
        try {
            return new String(state.out, 0, n, StandardCharsets.UTF_8);
        } finally {
            Arrays.fill(state.out, 0, n, (byte) 0);
        }
    }
}
