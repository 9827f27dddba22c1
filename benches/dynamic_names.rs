//! Per-message names (issue 14): a 1 KiB rule-node configuration resolved through one
//! allow-listed SERVICE session, with 3 per-message names (`{{metadata.KEY}}` filled from 6
//! metadata entries) vs the same document with the 3 names written out (baseline, same
//! session, same secrets, same output). Goal: per-message ≤ 1.3 × static.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tbsecrets::placeholder::Variables;
use tbsecrets::service::ResolveOptions;
use tbsecrets::{AllowList, MasterKey, Principal, Role, SecretStorage, SecretType, StorageOptions};

/// A REST-call rule-node configuration of about 1 KiB holding `names[0..3]` as placeholders.
fn config(names: [&str; 3]) -> String {
    let mut doc = format!(
        r#"{{"restEndpointUrlPattern":"https://api.example.com/v1/devices/${{deviceName}}/telemetry","requestMethod":"POST","useSimpleClientHttpFactory":false,"ignoreRequestBody":false,"enableProxy":false,"readTimeoutMs":10000,"maxParallelRequestsCount":32,"headers":{{"Content-Type":"application/json","Authorization":"Bearer ${{secret:{}}}","X-Api-Key":"${{secret:{};type:TEXT}}"}},"credentials":{{"type":"basic","username":"tb-rule-engine","password":"${{secret:{}}}"}},"#,
        names[0], names[1], names[2]
    );
    doc.push_str(r#""comment":""#);
    while doc.len() < 1000 {
        doc.push_str("padding ");
    }
    doc.push_str(r#""}"#);
    doc
}

fn bench_dynamic_names(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = StorageOptions::with_master_key(MasterKey::generate());
    let store = SecretStorage::open(dir.path().join("bench.db"), options).expect("open store");
    for name in [
        "device-sensor-7-token",
        "thermostat-api-key",
        "site-berlin-password",
    ] {
        store
            .create(
                "t",
                name,
                SecretType::Text,
                b"0123456789abcdef0123456789abcdef",
                "",
            )
            .expect("create");
    }
    let allowed = AllowList::new(["device-*-token", "*-api-key", "site-*-password"]).expect("list");
    let session = store.session(
        Principal::new("t", Role::Service)
            .with_id("rule-node")
            .with_allowed_names(allowed),
    );
    let static_doc = config([
        "device-sensor-7-token",
        "thermostat-api-key",
        "site-berlin-password",
    ]);
    let dynamic_doc = config([
        "device-{{metadata.deviceName}}-token",
        "{{metadata.deviceType}}-api-key",
        "site-{{metadata.site}}-password",
    ]);
    let metadata = Variables::from_metadata([
        ("deviceName", "sensor-7"),
        ("deviceType", "thermostat"),
        ("site", "berlin"),
        ("ts", "1733300000000"),
        ("customerName", "Customer A"),
        ("ss_serialNumber", "SN-0042"),
    ]);
    let with_vars = ResolveOptions {
        variables: Some(&metadata),
        ..ResolveOptions::default()
    };
    let expected = session
        .resolve_json("t", &static_doc, ResolveOptions::default())
        .expect("static")
        .into_owned();
    let got = session
        .resolve_json("t", &dynamic_doc, with_vars)
        .expect("dynamic");
    assert_eq!(got, expected, "both documents resolve to the same output");
    assert!(
        (1000..1100).contains(&static_doc.len()),
        "{}",
        static_doc.len()
    );

    let mut group = c.benchmark_group("resolve_1k_rule_node_config");
    group.throughput(Throughput::Elements(1));
    group.bench_function("static_3_names", |b| {
        b.iter(|| {
            session
                .resolve_json("t", &static_doc, ResolveOptions::default())
                .expect("static")
        })
    });
    group.bench_function("per_message_3_names", |b| {
        b.iter(|| {
            session
                .resolve_json("t", &dynamic_doc, with_vars)
                .expect("dynamic")
        })
    });
    group.finish();
    drop(session);
    store.close().expect("close");
}

criterion_group!(benches, bench_dynamic_names);
criterion_main!(benches);
