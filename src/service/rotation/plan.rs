//! Rotation dry runs: what a rotation would rewrap or re-encrypt, and how long it would take,
//! estimated from a timed sample of the same work done in memory. Nothing is written: no
//! transaction, no audit record, no anchor change.

use super::{master, tenant};
use crate::audit::AUDIT_KEY_TENANT;
use crate::crypto::{DataKey, MasterKey};
use crate::error::Result;
use crate::model::validate_tenant;
use crate::service::Session;
use serde::Serialize;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Items (data keys or versions) whose work a dry run times for its estimate.
pub const SAMPLE: usize = 256;

/// What a rotation would do (a dry run), with an estimate of its time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RotationPlan {
    /// Tenants concerned: every tenant with a data key (master key), or the one tenant.
    pub tenants: usize,
    /// Data keys that would be rewrapped (master key) or created (tenant key: 1).
    pub keys: usize,
    /// Secrets whose versions would be re-encrypted (tenant key; 0 for the master key).
    pub secrets: usize,
    /// Kept versions that would be re-encrypted (tenant key; 0 for the master key).
    pub versions: usize,
    /// The id the new key would get (master key id, or the tenant's next data key id).
    pub key_id: u32,
    /// Items whose work was timed for the estimate (at most [`SAMPLE`]).
    pub sampled: usize,
    /// Estimated time of the rotation's work, in microseconds: the per-item time of the
    /// sample (master key: unwrapping and wrapping a data key under a throwaway key; tenant
    /// key: reading, opening and sealing a version under a throwaway key) times the items.
    /// The final writes are not included.
    pub estimated_micros: u64,
}

/// `per_sample` scaled from `sampled` items to `items`, in microseconds.
fn estimate(per_sample: Duration, sampled: usize, items: usize) -> u64 {
    if sampled == 0 {
        return 0;
    }
    let micros = per_sample.as_secs_f64() * 1e6 * items as f64 / sampled as f64;
    micros.ceil() as u64
}

impl Session<'_> {
    /// What [`Session::rotate_master_key`] would do; needs what it needs (WRITE in every
    /// tenant). See [`crate::SecretStorage::plan_master_key_rotation`].
    pub fn plan_master_key_rotation(&self) -> Result<RotationPlan> {
        self.read(master::op(), |store| {
            store.ensure_open()?;
            let (header, keys) = master::snapshot(store)?;
            let scratch = MasterKey::generate();
            let sampled = keys.len().min(SAMPLE);
            let started = Instant::now();
            for (tenant, wrapped) in &keys[..sampled] {
                black_box(
                    store
                        .keyring
                        .rewrap(tenant, wrapped, &scratch, header.kek_id + 1)?,
                );
            }
            let took = started.elapsed();
            let mut tenants: Vec<&str> = keys
                .iter()
                .map(|(tenant, _)| tenant.as_str())
                .filter(|tenant| *tenant != AUDIT_KEY_TENANT)
                .collect();
            let tenant_keys = tenants.len();
            tenants.dedup(); // in tenant order
            Ok(RotationPlan {
                tenants: tenants.len(),
                keys: tenant_keys,
                secrets: 0,
                versions: 0,
                key_id: header.kek_id + 1,
                sampled,
                estimated_micros: estimate(took, sampled, keys.len()),
            })
        })
    }

    /// What [`Session::rotate_tenant_key`] would do; needs what it needs (WRITE in the
    /// tenant). NOT_FOUND for a tenant without a data key.
    pub fn plan_tenant_key_rotation(&self, tenant: &str) -> Result<RotationPlan> {
        self.read(tenant::op(tenant), |store| {
            store.ensure_open()?;
            validate_tenant(tenant)?;
            let (active, (secrets, versions)) = {
                let mut conn = store.backend.connection()?;
                let backend = conn.store();
                let active = tenant::active_key(backend, tenant)?;
                (active, backend.count_tenant_versions(tenant)?)
            };
            let scratch = DataKey::generate(active.dek_id + 1);
            let started = Instant::now();
            let (rows, keys) = tenant::page(store, tenant, scratch.id(), None, SAMPLE)?;
            for (name, secret_type, old) in &rows {
                black_box(tenant::reseal_one(
                    tenant,
                    name,
                    *secret_type,
                    old,
                    &keys,
                    &scratch,
                )?);
            }
            let took = started.elapsed();
            let versions = usize::try_from(versions).unwrap_or(usize::MAX);
            Ok(RotationPlan {
                tenants: 1,
                keys: 1,
                secrets: usize::try_from(secrets).unwrap_or(usize::MAX),
                versions,
                key_id: scratch.id(),
                sampled: rows.len(),
                estimated_micros: estimate(took, rows.len(), versions),
            })
        })
    }
}
