//! Resolving the ThingsBoard fixture documents against `secrets.json` (tests/fixtures/README.md).

mod common;

use common::{fixture, fixture_documents, fixture_secrets, MapSource};
use serde_json::Value;
use std::borrow::Cow;
use tbsecrets::placeholder::{references, resolve_json, Reference};

/// `value` with every string (not key) passed through `f`.
fn map_strings(value: &Value, f: &impl Fn(&str) -> String) -> Value {
    match value {
        Value::String(s) => Value::String(f(s)),
        Value::Array(items) => Value::Array(items.iter().map(|v| map_strings(v, f)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), map_strings(v, f)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Independent of the crate's scanner: plain `str::replace` of each spelled-out placeholder.
fn substitute(text: &str) -> String {
    let mut out = text.to_owned();
    for (name, secret_type, value) in fixture_secrets() {
        out = out.replace(&format!("${{secret:{name};type:{secret_type}}}"), &value);
    }
    out
}

#[test]
fn every_fixture_resolves_to_the_exact_values() {
    let documents = fixture_documents();
    assert_eq!(documents.len(), 8);
    let mut resolved_some = 0;
    for (name, doc) in documents {
        let mut source = MapSource::new(fixture_secrets());
        let out = resolve_json(&doc, &mut source).unwrap_or_else(|e| panic!("{name}: {e}"));
        let original: Value = serde_json::from_str(&doc).unwrap();
        let resolved: Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("{name}: output is not valid JSON: {e}"));
        assert_eq!(resolved, map_strings(&original, &substitute), "{name}");
        assert!(!out.contains("${secret:"), "{name}");
        // Formatting outside the rewritten strings is kept: PEM newlines were escaped, so the
        // output has exactly the input's lines.
        assert_eq!(out.lines().count(), doc.lines().count(), "{name}");
        assert_eq!(
            out.matches("${device").count(),
            doc.matches("${device").count(),
            "{name}: ThingsBoard patterns must stay"
        );
        let mut distinct = source.calls.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), source.calls.len(), "{name}: fetched twice");
        if matches!(out, Cow::Owned(_)) {
            resolved_some += 1;
        } else {
            assert_eq!(name, "root_rule_chain.json");
        }
    }
    assert_eq!(resolved_some, 7);
}

#[test]
fn pem_values_round_trip_exactly() {
    let secrets = fixture_secrets();
    let doc = fixture("mqtt_node_tls.json");
    let out = resolve_json(&doc, &mut MapSource::new(secrets.clone())).unwrap();
    let resolved: Value = serde_json::from_str(&out).unwrap();
    let pem = |name: &str| secrets.iter().find(|s| s.0 == name).unwrap().2.clone();
    let credentials = &resolved["configuration"]["credentials"];
    assert_eq!(credentials["caCert"], pem("plant-broker-ca"));
    assert_eq!(credentials["cert"], pem("plant-client-cert"));
    assert_eq!(credentials["privateKey"], pem("plant-client-key"));
    assert!(pem("plant-client-key").starts_with("-----BEGIN PRIVATE KEY-----\n"));
}

#[test]
fn quotes_and_backslashes_inside_a_jaas_string() {
    let doc = fixture("kafka_node_sasl.json");
    let out = resolve_json(&doc, &mut MapSource::new(fixture_secrets())).unwrap();
    let resolved: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        resolved["configuration"]["otherProperties"]["sasl.jaas.config"],
        "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"tb-producer\" password=\"kafka-Secret-42\";"
    );
    let rest = fixture("rest_api_call_node.json");
    let out = resolve_json(&rest, &mut MapSource::new(fixture_secrets())).unwrap();
    let resolved: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        resolved["configuration"]["credentials"]["password"],
        "p@ss \"quoted\" \\ back"
    );
    assert_eq!(
        resolved["configuration"]["restEndpointUrlPattern"],
        "https://api.partner.example/v1/devices/${deviceName}/telemetry"
    );
}

#[test]
fn references_of_the_rule_chain() {
    let refs = references(&fixture("rule_chain_with_secrets.json")).unwrap();
    // The rule chain uses every fixture secret except the two of the HTTP integration.
    let expected: Vec<Reference> = fixture_secrets()
        .into_iter()
        .filter(|(name, _, _)| !name.starts_with("gateway-"))
        .map(|(name, secret_type, _)| Reference {
            name,
            secret_type: Some(secret_type),
        })
        .collect();
    assert_eq!(expected.len(), 11);
    assert_eq!(refs, expected, "secrets.json lists them in document order");
    assert!(references(&fixture("root_rule_chain.json"))
        .unwrap()
        .is_empty());
}

#[test]
fn missing_secrets_are_all_named_without_values() {
    let doc = fixture("rule_chain_with_secrets.json");
    let mut secrets = fixture_secrets();
    let kept = secrets.split_off(2); // drop partner-api-token and partner-basic-password
    let mut source = MapSource::new(kept.clone());
    let err = resolve_json(&doc, &mut source).unwrap_err();
    assert_eq!(err.code(), tbsecrets::ErrorCode::Unresolved);
    let names: Vec<&str> = err.problems().iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["partner-api-token", "partner-basic-password"]);
    for problem in err.problems() {
        assert!(doc[problem.offset..].starts_with(&format!("${{secret:{}", problem.name)));
    }
    let message = err.to_string();
    for (_, _, value) in kept {
        assert!(!message.contains(&value));
    }
}
