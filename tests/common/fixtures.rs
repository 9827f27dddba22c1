//! ThingsBoard fixtures (`examples/configs/`) and a map-backed secret source that records
//! every fetch, for the placeholder tests and benchmark.

use std::collections::HashMap;
use std::path::PathBuf;
use tbsecrets::placeholder::{Fetched, SecretSource};
use tbsecrets::{Result, SecretType};
use zeroize::Zeroizing;

/// Secrets by name, answering `Missing` for anything else, and the names fetched in order.
#[derive(Default)]
pub struct MapSource {
    pub secrets: HashMap<String, (SecretType, String)>,
    pub calls: Vec<String>,
}

impl MapSource {
    pub fn new(entries: impl IntoIterator<Item = (String, SecretType, String)>) -> Self {
        MapSource {
            secrets: entries.into_iter().map(|(n, t, v)| (n, (t, v))).collect(),
            calls: Vec::new(),
        }
    }
}

impl SecretSource for MapSource {
    fn fetch(&mut self, name: &str) -> Result<Fetched> {
        self.calls.push(name.to_owned());
        Ok(match self.secrets.get(name) {
            Some((secret_type, value)) => Fetched::Found {
                secret_type: *secret_type,
                replacement: Zeroizing::new(value.clone()),
            },
            None => Fetched::Missing,
        })
    }
}

pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/configs")
}

pub fn fixture(name: &str) -> String {
    let path = fixture_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `(name, type, value)` of every secret in `secrets.json`.
pub fn fixture_secrets() -> Vec<(String, SecretType, String)> {
    let doc: serde_json::Value = serde_json::from_str(&fixture("secrets.json")).unwrap();
    doc["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["type"].as_str().unwrap().parse().unwrap(),
                s["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Every fixture document (all but `secrets.json`), as (file name, text).
pub fn fixture_documents() -> Vec<(String, String)> {
    let mut names: Vec<String> = std::fs::read_dir(fixture_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json") && n != "secrets.json")
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| (n.clone(), fixture(&n)))
        .collect()
}
