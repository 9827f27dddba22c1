package org.tbsecrets.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.TextNode;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
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

/**
 * Resolving ThingsBoard configurations through tbsecrets against ThingsBoard's approach: a Jackson
 * tree walk that rewrites every text node with {@code Pattern}/{@code Matcher.appendReplacement},
 * then serialises the tree. Two baselines: {@code *BaselineThingsBoard} fetches each placeholder's
 * secret the ThingsBoard way (map lookup and a new {@code Cipher} per use, see
 * {@link ThingsBoardSecrets}); {@code *BaselineJacksonPlainMap} reads already decrypted values from
 * a plain map, the cheapest the Java approach can be. tbsecrets decrypts each distinct secret once
 * per call.
 *
 * <ul>
 *   <li>{@code restNode*}: the REST API call node config (~1 KiB, 2 placeholders);
 *   <li>{@code ruleChain*}: a 1 MiB rule-chain export (the nodes of rule_chain_with_secrets.json
 *       repeated, about one placeholder per KiB);
 *   <li>{@code large*}: a 10 MiB JSON document with 6 placeholders, as {@code byte[]}, direct
 *       {@code ByteBuffer}, and as text, and into a reused direct output buffer
 *       ({@code large*IntoDirectBuffer}); {@code largeBaselineArrayCopy} is one copy of it (the
 *       memory-bandwidth ceiling of producing a new document).
 * </ul>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class ResolveBenchmark {
    /** ThingsBoard's placeholder pattern. */
    static final Pattern SECRET = Pattern.compile("\\$\\{secret:([^;}]+)(?:;type:([A-Z_]+))?}");

    Path dir;
    SecretStorage store;
    Map<String, String> values;
    ThingsBoardSecrets thingsBoard;
    String restNode;
    String ruleChain;
    byte[] ruleChainBytes;
    byte[] large;
    ByteBuffer largeDirect;
    ByteBuffer outDirect;
    byte[] copyTarget;

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        dir = Files.createTempDirectory("tbsecrets-bench");
        store = BenchFixtures.storeWithFixtureSecrets(dir);
        values = BenchFixtures.secretValues();
        thingsBoard = new ThingsBoardSecrets();
        for (Map.Entry<String, String> e : values.entrySet()) {
            thingsBoard.put(BenchFixtures.TENANT, e.getKey(), e.getValue());
        }
        restNode = BenchFixtures.config("rest_api_call_node.json");
        ruleChain = BenchFixtures.ruleChainOf1MiB();
        ruleChainBytes = ruleChain.getBytes(StandardCharsets.UTF_8);
        large = BenchFixtures.json10MiBFewPlaceholders().getBytes(StandardCharsets.UTF_8);
        largeDirect = ByteBuffer.allocateDirect(large.length).put(large).flip();
        copyTarget = new byte[large.length];
        outDirect = ByteBuffer.allocateDirect(2 * large.length);
        // Both approaches must agree before they are timed.
        for (String doc : new String[] {restNode, ruleChain}) {
            JsonNode ours = BenchFixtures.MAPPER.readTree(store.resolve(BenchFixtures.TENANT, doc));
            JsonNode theirs = BenchFixtures.MAPPER.readTree(jacksonResolve(doc, this::thingsBoardValue));
            JsonNode plain = BenchFixtures.MAPPER.readTree(jacksonResolve(doc, values::get));
            if (!ours.equals(theirs) || !ours.equals(plain)) {
                throw new IllegalStateException("tbsecrets and the baseline disagree");
            }
        }
        System.out.printf("%n[documents] rest node %d B, rule chain %d B, large %d B%n",
                restNode.length(), ruleChainBytes.length, large.length);
    }

    @TearDown(Level.Trial)
    public void tearDown() throws Exception {
        store.close();
        try (var files = Files.walk(dir)) {
            files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }

    private String thingsBoardValue(String name) {
        return thingsBoard.getSecret(BenchFixtures.TENANT, name);
    }

    /** ThingsBoard's approach: parse, walk every text node, regex-replace, serialise. */
    static String jacksonResolve(String json, Function<String, String> secrets) throws Exception {
        JsonNode root = BenchFixtures.MAPPER.readTree(json);
        walk(root, secrets);
        return BenchFixtures.MAPPER.writeValueAsString(root);
    }

    private static void walk(JsonNode node, Function<String, String> secrets) {
        if (node instanceof ObjectNode obj) {
            for (Map.Entry<String, JsonNode> e : obj.properties()) {
                JsonNode v = e.getValue();
                if (v.isTextual()) {
                    String replaced = replace(v.asText(), secrets);
                    if (replaced != null) {
                        e.setValue(TextNode.valueOf(replaced));
                    }
                } else {
                    walk(v, secrets);
                }
            }
        } else if (node instanceof ArrayNode arr) {
            for (int i = 0; i < arr.size(); i++) {
                JsonNode v = arr.get(i);
                if (v.isTextual()) {
                    String replaced = replace(v.asText(), secrets);
                    if (replaced != null) {
                        arr.set(i, TextNode.valueOf(replaced));
                    }
                } else {
                    walk(v, secrets);
                }
            }
        }
    }

    private static String replace(String text, Function<String, String> secrets) {
        if (!text.contains("${secret:")) {
            return null;
        }
        Matcher m = SECRET.matcher(text);
        StringBuilder out = new StringBuilder(text.length() + 64);
        while (m.find()) {
            String value = secrets.apply(m.group(1));
            if (value == null) {
                throw new IllegalStateException("unresolved " + m.group(1));
            }
            m.appendReplacement(out, Matcher.quoteReplacement(value));
        }
        return m.appendTail(out).toString();
    }

    @Benchmark
    public String restNodeTbsecrets() {
        return store.resolve(BenchFixtures.TENANT, restNode);
    }

    @Benchmark
    public String restNodeBaselineThingsBoard() throws Exception {
        return jacksonResolve(restNode, this::thingsBoardValue);
    }

    @Benchmark
    public String restNodeBaselineJacksonPlainMap() throws Exception {
        return jacksonResolve(restNode, values::get);
    }

    @Benchmark
    public String ruleChainTbsecrets() {
        return store.resolve(BenchFixtures.TENANT, ruleChain);
    }

    @Benchmark
    public byte[] ruleChainTbsecretsBytes() {
        return store.resolveBytes(BenchFixtures.TENANT, ruleChainBytes);
    }

    @Benchmark
    public String ruleChainBaselineThingsBoard() throws Exception {
        return jacksonResolve(ruleChain, this::thingsBoardValue);
    }

    @Benchmark
    public String ruleChainBaselineJacksonPlainMap() throws Exception {
        return jacksonResolve(ruleChain, values::get);
    }

    @Benchmark
    public byte[] largeJsonBytes() {
        return store.resolveBytes(BenchFixtures.TENANT, large);
    }

    @Benchmark
    public ByteBuffer largeJsonDirectBuffer() {
        return store.resolveBytes(BenchFixtures.TENANT, largeDirect);
    }

    @Benchmark
    public byte[] largeTextBytes() {
        return store.resolveTextBytes(BenchFixtures.TENANT, large);
    }

    @Benchmark
    public ByteBuffer largeTextDirectBuffer() {
        return store.resolveTextBytes(BenchFixtures.TENANT, largeDirect);
    }

    @Benchmark
    public long largeTextIntoDirectBuffer() {
        return store.resolveTextBytes(BenchFixtures.TENANT, largeDirect, outDirect.clear());
    }

    @Benchmark
    public long largeJsonIntoDirectBuffer() {
        return store.resolveBytes(BenchFixtures.TENANT, largeDirect, outDirect.clear());
    }

    @Benchmark
    public byte[] largeBaselineArrayCopy() {
        System.arraycopy(large, 0, copyTarget, 0, large.length);
        return copyTarget;
    }
}
