//! Placeholder scanning and resolution against hand-written and serde_json baselines.
//!
//! `cargo bench --bench placeholder -- --warm-up-time 1 --measurement-time 3`; only the
//! adversarial inputs against a clean one: `cargo bench --bench placeholder -- adversarial`.

#[path = "../tests/common/mod.rs"]
mod common;

use common::{fixture, fixture_secrets, MapSource};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use serde_json::Value;
use std::collections::HashMap;
use tbsecrets::placeholder::{
    contains_placeholder, references, resolve_json, resolve_text, scan as scan_tokens,
};
use tbsecrets::{MasterKey, SecretStorage, SecretType, StorageOptions};

/// A store in a temporary directory holding `secrets` in tenant `default`.
fn store_with(secrets: &[(String, SecretType, String)]) -> (tempfile::TempDir, SecretStorage) {
    let dir = tempfile::tempdir().unwrap();
    let store = SecretStorage::open(
        dir.path().join("bench.db"),
        StorageOptions::with_master_key(MasterKey::generate()),
    )
    .unwrap();
    for (name, secret_type, value) in secrets {
        store
            .create("default", name, *secret_type, value.as_bytes(), "")
            .unwrap();
    }
    (dir, store)
}

const MIB: usize = 1024 * 1024;

/// ThingsBoard's root rule chain repeated to at least `len` bytes: JSON-like text, no secrets.
fn filler(len: usize) -> String {
    let chunk = fixture("root_rule_chain.json");
    chunk.repeat(len.div_ceil(chunk.len()))
}

/// A 10 MiB valid JSON document without placeholders: an array of root rule chains.
fn json_without_placeholders() -> String {
    let chain = fixture("root_rule_chain.json");
    let copies = (10 * MIB).div_ceil(chain.len() + 2);
    format!("[{}]", vec![chain.as_str(); copies].join(",\n"))
}

fn scan(c: &mut Criterion) {
    let doc = json_without_placeholders();
    let bytes = doc.as_bytes();
    let mut group = c.benchmark_group("scan_10MiB_json_no_placeholders");
    group.throughput(Throughput::Bytes(doc.len() as u64));
    let finder = memchr::memmem::Finder::new("${secret:");
    group.bench_function("baseline_memmem_find", |b| {
        b.iter(|| finder.find(black_box(bytes)))
    });
    group.bench_function("contains_placeholder", |b| {
        b.iter(|| contains_placeholder(black_box(&doc)))
    });
    group.finish();
}

/// 50 TEXT secrets of 24–73 bytes.
fn fifty_secrets() -> Vec<(String, SecretType, String)> {
    (0..50)
        .map(|i| {
            let value = format!("value-{i:02}-{}", "x".repeat(i + 15));
            (format!("secret-{i:02}"), SecretType::Text, value)
        })
        .collect()
}

/// 10 MiB of text with 1,000 placeholders (every ~10 KiB) over 50 secrets.
fn text_with_placeholders() -> String {
    let filler = filler(10 * MIB);
    let step = filler.len() / 1000;
    let mut text = String::with_capacity(filler.len() + 40_000);
    let mut pos = 0;
    for i in 0..1000 {
        let mut next = (i + 1) * step;
        while !filler.is_char_boundary(next) {
            next += 1;
        }
        text.push_str(&filler[pos..next]);
        let suffix = if i % 2 == 0 { ";type:TEXT" } else { "" };
        text.push_str(&format!("${{secret:secret-{:02}{suffix}}}", i % 50));
        pos = next;
    }
    text.push_str(&filler[pos..]);
    text
}

/// The obvious single-pass loop: find, look up, copy. No validation, escapes or type checks.
fn naive_replace(text: &str, secrets: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for at in memchr::memmem::find_iter(text.as_bytes(), "${secret:") {
        let body = at + "${secret:".len();
        let Some(close) = memchr::memchr(b'}', &text.as_bytes()[body..]) else {
            break;
        };
        let inner = &text[body..body + close];
        let name = inner.split(';').next().unwrap_or(inner);
        out.push_str(&text[pos..at]);
        out.push_str(&secrets[name]);
        pos = body + close + 1;
    }
    out.push_str(&text[pos..]);
    out
}

fn resolve_text_bench(c: &mut Criterion) {
    let text = text_with_placeholders();
    let secrets = fifty_secrets();
    let map: HashMap<String, String> = secrets
        .iter()
        .map(|(n, _, v)| (n.clone(), v.clone()))
        .collect();
    let expected = naive_replace(&text, &map);
    let mut source = MapSource::new(secrets.clone());
    assert_eq!(resolve_text(&text, &mut source).unwrap(), expected);

    let mut group = c.benchmark_group("resolve_text_10MiB_1000_placeholders");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("reference_copy_only_to_owned", |b| {
        b.iter(|| black_box(&text).to_owned())
    });
    let finder = memchr::memmem::Finder::new("${secret:");
    group.bench_function("baseline_memmem_scan", |b| {
        b.iter(|| finder.find_iter(black_box(text.as_bytes())).count())
    });
    group.bench_function("baseline_naive_memmem_replace", |b| {
        b.iter(|| naive_replace(black_box(&text), &map))
    });
    group.bench_function("resolve_text", |b| {
        b.iter(|| {
            let mut source = MapSource::new(secrets.clone());
            resolve_text(black_box(&text), &mut source).unwrap().len()
        })
    });
    // Through the store: each distinct secret decrypted once per call.
    let (_dir, store) = store_with(&secrets);
    assert_eq!(store.resolve_str("default", &text).unwrap(), expected);
    group.bench_function("store_resolve_str", |b| {
        b.iter(|| {
            store
                .resolve_str("default", black_box(&text))
                .unwrap()
                .len()
        })
    });
    group.finish();
}

/// The fixture rule chain with its nodes repeated until the pretty-printed export is ≥ 1 MiB.
fn big_rule_chain() -> String {
    let mut chain: Value = serde_json::from_str(&fixture("rule_chain_with_secrets.json")).unwrap();
    let nodes = chain["metadata"]["nodes"].as_array().unwrap().clone();
    let node_bytes = serde_json::to_string_pretty(&nodes).unwrap().len();
    let copies = MIB.div_ceil(node_bytes);
    let repeated: Vec<Value> = (0..copies).flat_map(|_| nodes.iter().cloned()).collect();
    chain["metadata"]["nodes"] = Value::Array(repeated);
    serde_json::to_string_pretty(&chain).unwrap()
}

/// A 10 MiB JSON document with 6 placeholders, built like the Java benchmark's
/// (`BenchFixtures.json10MiBFewPlaceholders`): root rule chains with the REST-call node
/// configuration at the start, the middle and the end.
fn json_10mib_few_placeholders() -> String {
    let chain = fixture("root_rule_chain.json");
    let rest = fixture("rest_api_call_node.json");
    let mut out = format!("[\n{rest}");
    let mut middle = false;
    while out.len() < 10 * MIB {
        out.push_str(",\n");
        out.push_str(&chain);
        if !middle && out.len() > 5 * MIB {
            out.push_str(",\n");
            out.push_str(&rest);
            middle = true;
        }
    }
    format!("{out},\n{rest}\n]\n")
}

/// Goal 3 of issue 15: JSON resolution of 10 MiB with few placeholders against a bare
/// `memchr::memmem` scan of the same buffer and `serde_json`'s validation alone.
fn resolve_json_10mib_bench(c: &mut Criterion) {
    let doc = json_10mib_few_placeholders();
    let secrets = fixture_secrets();
    let resolved = resolve_json(&doc, &mut MapSource::new(secrets.clone())).unwrap();
    serde_json::from_str::<serde::de::IgnoredAny>(&resolved).unwrap();
    let mut group = c.benchmark_group("resolve_json_10MiB_6_placeholders");
    group.throughput(Throughput::Bytes(doc.len() as u64));
    let finder = memchr::memmem::Finder::new("${secret:");
    group.bench_function("baseline_memmem_scan", |b| {
        b.iter(|| finder.find_iter(black_box(doc.as_bytes())).count())
    });
    group.bench_function("baseline_serde_json_validate_only", |b| {
        b.iter(|| serde_json::from_str::<serde::de::IgnoredAny>(black_box(&doc)).unwrap())
    });
    group.bench_function("resolve_json", |b| {
        b.iter(|| {
            let mut source = MapSource::new(secrets.clone());
            resolve_json(black_box(&doc), &mut source).unwrap().len()
        })
    });
    group.finish();
}

fn resolve_json_bench(c: &mut Criterion) {
    let doc = big_rule_chain();
    let secrets = fixture_secrets();
    let resolved = resolve_json(&doc, &mut MapSource::new(secrets.clone())).unwrap();
    serde_json::from_str::<Value>(&resolved).unwrap();
    eprintln!(
        "rule chain: {} bytes, {} placeholders",
        doc.len(),
        doc.matches("${secret:").count()
    );

    let mut group = c.benchmark_group("resolve_json_1MiB_rule_chain");
    group.throughput(Throughput::Bytes(doc.len() as u64));
    group.bench_function("baseline_serde_value_roundtrip", |b| {
        b.iter(|| {
            let value: Value = serde_json::from_str(black_box(&doc)).unwrap();
            serde_json::to_string(&value).unwrap().len()
        })
    });
    group.bench_function("validate_only_ignored_any", |b| {
        b.iter(|| serde_json::from_str::<serde::de::IgnoredAny>(black_box(&doc)).unwrap())
    });
    group.bench_function("resolve_json", |b| {
        b.iter(|| {
            let mut source = MapSource::new(secrets.clone());
            resolve_json(black_box(&doc), &mut source).unwrap().len()
        })
    });
    let (_dir, store) = store_with(&secrets);
    assert_eq!(store.resolve_json("default", &doc).unwrap(), resolved);
    group.bench_function("store_resolve_json", |b| {
        b.iter(|| {
            store
                .resolve_json("default", black_box(&doc))
                .unwrap()
                .len()
        })
    });
    group.finish();
}

/// `unit` repeated to 1 MiB (whole units, so never more than one unit past it).
fn mib_of(unit: &str) -> String {
    unit.repeat(MIB.div_ceil(unit.len()))
}

/// 1 MiB inputs built to make a scanner slow, against a clean 1 MiB text with 100 placeholders
/// that resolve. Failing inputs fail with every malformed opener listed (one error entry per
/// opener), so their cost includes building that error.
fn adversarial_bench(c: &mut Criterion) {
    let secrets = fifty_secrets();
    let clean = {
        let filler = filler(MIB);
        let step = filler.len() / 100;
        let mut text = String::with_capacity(filler.len() + 4000);
        let mut pos = 0;
        for i in 0..100 {
            let mut next = (i + 1) * step;
            while !filler.is_char_boundary(next) {
                next += 1;
            }
            text.push_str(&filler[pos..next]);
            text.push_str(&format!("${{secret:secret-{:02}}}", i % 50));
            pos = next;
        }
        text.push_str(&filler[pos..]);
        text
    };
    let one_unclosed = format!("é${{secret:{}", filler(MIB));
    let dense_unclosed = mib_of("é${secret:");
    let dense_unclosed_json = format!("[\"\\u00e9{}\"]", mib_of("é${secret:"));
    let nested = mib_of("${secret:${secret:");
    let escapes = mib_of("é$${secret:x} ");
    let other_patterns = mib_of("${deviceName}${ENV:x}${secretx:");

    let mut group = c.benchmark_group("adversarial_1MiB");
    group.throughput(Throughput::Bytes(MIB as u64));
    group.bench_function("clean_resolve_text_100_placeholders", |b| {
        b.iter(|| {
            let mut source = MapSource::new(secrets.clone());
            resolve_text(black_box(&clean), &mut source).unwrap().len()
        })
    });
    for (label, text) in [
        ("one_unclosed_after_multibyte", &one_unclosed),
        ("dense_unclosed_after_multibyte", &dense_unclosed),
        ("dense_nested_openers", &nested),
        ("dense_escapes", &escapes),
        ("dense_other_dollar_braces", &other_patterns),
    ] {
        group.bench_function(format!("resolve_text_{label}"), |b| {
            b.iter(|| {
                let mut source = MapSource::new(secrets.clone());
                resolve_text(black_box(text), &mut source).map(|out| out.len())
            })
        });
    }
    // The scan alone (no error built): what is left of the failing cases is the error that
    // lists one entry per opener.
    group.bench_function("scan_only_dense_unclosed_after_multibyte", |b| {
        b.iter(|| scan_tokens(black_box(&dense_unclosed)).count())
    });
    group.bench_function("resolve_json_dense_unclosed_in_decoded_string", |b| {
        b.iter(|| {
            let mut source = MapSource::new(secrets.clone());
            resolve_json(black_box(&dense_unclosed_json), &mut source).map(|out| out.len())
        })
    });
    group.bench_function("references_dense_unclosed_in_decoded_string", |b| {
        b.iter(|| references(black_box(&dense_unclosed_json)).map(|refs| refs.len()))
    });
    group.finish();
}

criterion_group!(
    benches,
    scan,
    resolve_text_bench,
    resolve_json_bench,
    resolve_json_10mib_bench,
    adversarial_bench
);
criterion_main!(benches);
