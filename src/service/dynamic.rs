//! The store's side of per-message names (docs/ARCHITECTURE.md, "Per-message names"): the
//! reference index records a per-message placeholder by its pattern (`{{…}}` parts kept), and
//! `where_used` of a concrete name also lists the sources whose pattern can be filled to it.

use crate::error::Result;
use crate::placeholder::{is_dynamic, pattern_matches};
use crate::store::{Store, StoredReference};

/// The references to `name`: exact ones, then those of every matching pattern, in source
/// order.
pub(super) fn where_used(
    store: &mut dyn Store,
    tenant: &str,
    name: &str,
) -> Result<Vec<StoredReference>> {
    let mut found = store.where_used(tenant, name)?;
    if is_dynamic(name) {
        return Ok(found);
    }
    let before = found.len();
    found.extend(
        store
            .pattern_references(tenant)?
            .into_iter()
            .filter(|r| pattern_matches(&r.name, name)),
    );
    if found.len() > before {
        found.sort_by(|a, b| (&a.source_id, &a.name).cmp(&(&b.source_id, &b.name)));
    }
    Ok(found)
}

/// IN_USE, naming the sources, when tracked sources reference `name`: by the name, or by a
/// per-message pattern that can be filled to it (`device-{{metadata.deviceName}}` names
/// `device-7`), since deleting it would break them for some messages. The one IN_USE check
/// of `delete` and `destroy`, made inside the change's transaction before the backend
/// deletes.
pub(super) fn refuse_in_use(store: &mut dyn Store, tenant: &str, name: &str) -> Result<()> {
    let mut sources: Vec<String> = where_used(store, tenant, name)?
        .into_iter()
        .map(|r| r.source_id)
        .collect();
    if sources.is_empty() {
        return Ok(());
    }
    sources.sort();
    sources.dedup();
    Err(crate::store::in_use(name, &sources))
}
