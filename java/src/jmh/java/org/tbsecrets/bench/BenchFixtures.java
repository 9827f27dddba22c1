package org.tbsecrets.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.LinkedHashMap;
import java.util.Map;
import org.tbsecrets.SecretStorage;
import org.tbsecrets.SecretStorageOptions;
import org.tbsecrets.SecretType;

/** The ThingsBoard documents and secrets of {@code examples/configs}, and the scaled-up ones. */
final class BenchFixtures {
    static final String TENANT = "default";
    static final ObjectMapper MAPPER = new ObjectMapper();
    static final int MIB = 1024 * 1024;

    private BenchFixtures() {}

    static String config(String name) throws IOException {
        Path dir = Path.of(System.getProperty("tbsecrets.fixtures", "../examples/configs"));
        return Files.readString(dir.resolve(name), StandardCharsets.UTF_8);
    }

    /** name → value of every secret in {@code secrets.json}. */
    static Map<String, String> secretValues() throws IOException {
        Map<String, String> out = new LinkedHashMap<>();
        for (JsonNode s : MAPPER.readTree(config("secrets.json")).get("secrets")) {
            out.put(s.get("name").asText(), s.get("value").asText());
        }
        return out;
    }

    /** A store in a temporary directory holding every fixture secret in tenant {@value #TENANT}. */
    static SecretStorage storeWithFixtureSecrets(Path dir) throws IOException {
        byte[] key = new byte[32];
        new SecureRandom().nextBytes(key);
        SecretStorage store = SecretStorage.open(dir.resolve("bench.db"), SecretStorageOptions.withMasterKey(key));
        for (JsonNode s : MAPPER.readTree(config("secrets.json")).get("secrets")) {
            store.create(TENANT, s.get("name").asText(), SecretType.parse(s.get("type").asText()),
                    s.get("value").asText().getBytes(StandardCharsets.UTF_8), "");
        }
        return store;
    }

    /** A rule-chain export of at least 1 MiB: the nodes of rule_chain_with_secrets.json repeated. */
    static String ruleChainOf1MiB() throws IOException {
        JsonNode chain = MAPPER.readTree(config("rule_chain_with_secrets.json"));
        ArrayNode nodes = (ArrayNode) chain.path("metadata").path("nodes");
        JsonNode[] original = new JsonNode[nodes.size()];
        for (int i = 0; i < original.length; i++) {
            original[i] = nodes.get(i);
        }
        String out = MAPPER.writerWithDefaultPrettyPrinter().writeValueAsString(chain);
        while (out.length() < MIB) {
            for (JsonNode node : original) {
                nodes.add(node.deepCopy());
            }
            out = MAPPER.writerWithDefaultPrettyPrinter().writeValueAsString(chain);
        }
        return out;
    }

    /**
     * A 10 MiB JSON document with few placeholders: an array of ThingsBoard root rule chains
     * (no secrets) with the REST API call node config (2 placeholders) at the start, middle and end.
     */
    static String json10MiBFewPlaceholders() throws IOException {
        String chain = config("root_rule_chain.json");
        String rest = config("rest_api_call_node.json");
        StringBuilder out = new StringBuilder(10 * MIB + chain.length()).append("[\n").append(rest);
        boolean middle = false;
        while (out.length() < 10 * MIB) {
            out.append(",\n").append(chain);
            if (!middle && out.length() > 5 * MIB) {
                out.append(",\n").append(rest);
                middle = true;
            }
        }
        return out.append(",\n").append(rest).append("\n]\n").toString();
    }
}
