//! A map-backed [`SecretSource`] for the unit tests, recording every fetch.

use super::{Fetched, SecretSource};
use crate::{Result, SecretType};
use std::collections::HashMap;
use zeroize::Zeroizing;

pub(crate) struct MapSource {
    pub(crate) secrets: HashMap<String, (SecretType, String)>,
    /// Every name fetched, in call order.
    pub(crate) calls: Vec<String>,
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

pub(crate) fn secrets(entries: &[(&str, SecretType, &str)]) -> MapSource {
    MapSource {
        secrets: entries
            .iter()
            .map(|&(name, t, value)| (name.to_owned(), (t, value.to_owned())))
            .collect(),
        calls: Vec::new(),
    }
}
