//! The store as the placeholder resolver's source of values: each distinct secret is read
//! once per call through the value cache (decrypt-once, counting usage), checked against the
//! acting principal's allow-list, and TEXT_FILE values are materialised when asked to.

use super::ResolveOptions;
use crate::error::{ErrorCode, Result};
use crate::model::SecretType;
use crate::placeholder::{Fetched, SecretSource};
use crate::service::SecretStorage;
use zeroize::Zeroizing;

/// The store as the resolver's source of values, for one tenant and one call.
pub(super) struct StoreSource<'a> {
    pub(super) store: &'a SecretStorage,
    pub(super) tenant: &'a str,
    /// The acting principal's allow-list, if it is restricted to one.
    pub(super) allowed: Option<&'a crate::access::AllowList>,
    pub(super) options: ResolveOptions<'a>,
    /// Each distinct secret asked for, with whether it was found (for the audit log).
    pub(super) fetched: Vec<(String, ErrorCode)>,
    /// The paths of the files materialised for this call (see `Materializer::release`).
    pub(super) materialized: Vec<String>,
}

impl SecretSource for StoreSource<'_> {
    fn fetch(&mut self, name: &str) -> Result<Fetched> {
        if self.allowed.is_some_and(|list| !list.allows(name)) {
            return self.deny(name, crate::service::allow_list::OUTSIDE_REASON);
        }
        self.fetch_checked(name)
    }

    fn fetch_filled(&mut self, name: &str) -> Result<Fetched> {
        match self.allowed {
            Some(list) if list.allows(name) => self.fetch_checked(name),
            Some(_) => self.deny(name, crate::service::allow_list::OUTSIDE_REASON),
            None => self.deny(name, crate::service::allow_list::DYNAMIC_NEEDS_LIST),
        }
    }
}

impl StoreSource<'_> {
    /// A denial (recorded for the audit log) instead of a lookup.
    fn deny(&mut self, name: &str, reason: &str) -> Result<Fetched> {
        self.fetched
            .push((name.to_owned(), ErrorCode::PermissionDenied));
        Ok(Fetched::Denied {
            reason: reason.to_owned(),
        })
    }

    /// Looks a name up that the allow-list (if any) lets through, recording the outcome.
    fn fetch_checked(&mut self, name: &str) -> Result<Fetched> {
        let fetched = self.fetch_value(name);
        let outcome = match &fetched {
            Ok(Fetched::Found { .. }) => ErrorCode::Ok,
            Ok(Fetched::Missing) => ErrorCode::NotFound,
            Ok(Fetched::Unusable { .. }) => ErrorCode::Unresolved,
            Ok(Fetched::Denied { .. }) => ErrorCode::PermissionDenied,
            Err(e) => e.code(),
        };
        self.fetched.push((name.to_owned(), outcome));
        fetched
    }

    fn fetch_value(&mut self, name: &str) -> Result<Fetched> {
        let entry = match self.store.current_entry(self.tenant, name) {
            Ok(entry) => entry,
            Err(e) if e.code() == ErrorCode::NotFound => return Ok(Fetched::Missing),
            Err(e) if e.code() == ErrorCode::InvalidArgument => {
                return Ok(Fetched::Unusable {
                    reason: e.message().to_owned(),
                })
            }
            Err(e) => return Err(e),
        };
        self.store.mark_used(&entry);
        let value = entry.open()?;
        let secret_type = value.secret_type();
        if secret_type == SecretType::TextFile && self.options.materialize_files {
            let path = self.store.materializer.path_for(
                self.tenant,
                name,
                value.version(),
                value.as_bytes(),
            )?;
            self.materialized.push(path.clone());
            return Ok(Fetched::Found {
                secret_type,
                replacement: Zeroizing::new(path),
            });
        }
        match String::from_utf8(std::mem::take(&mut *value.into_bytes())) {
            Ok(text) => Ok(Fetched::Found {
                secret_type,
                replacement: Zeroizing::new(text),
            }),
            Err(not_text) => {
                // Wipe the bytes the failed conversion handed back.
                drop(Zeroizing::new(not_text.into_bytes()));
                Ok(Fetched::Unusable {
                    reason: "the TEXT_FILE value is not UTF-8 text; resolve it with materialisation to get a file path".to_owned(),
                })
            }
        }
    }
}
