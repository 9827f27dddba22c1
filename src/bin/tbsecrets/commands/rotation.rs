//! `rotate-master-key` and `rotate-tenant-key`, and their dry runs (`--dry-run`).

use super::{admin, open_existing};
use crate::args::Global;
use crate::progress::{Progress, Unit};
use crate::render;
use std::path::Path;
use tbsecrets::{Error, Result, RotationPlan};

/// `rotate-master-key [--new-key-file F] [--dry-run]`.
pub(super) fn master(
    g: &Global,
    new_key_file: Option<&Path>,
    dry_run: bool,
    json: bool,
) -> Result<Vec<u8>> {
    let store = open_existing(g)?;
    let session = admin(&store, g)?;
    if dry_run {
        let plan = session.plan_master_key_rotation()?;
        let planned = render::RotationPlanned::new("planned_master_key_rotation", None, &plan);
        return render::report(json, &planned, || {
            format!(
                "dry run: would rewrap {} data keys of {} tenants under master key {}; {}; nothing was changed",
                plan.keys,
                plan.tenants,
                plan.key_id,
                estimate(&plan, "rewrapping", "data keys in memory"),
            )
        });
    }
    let new_key_file = new_key_file
        .ok_or_else(|| Error::invalid("rotate-master-key needs --new-key-file (or --dry-run)"))?;
    let new_key = tbsecrets::read_key_file(new_key_file)?;
    let progress = Progress::new("rewrapping data keys", Unit::Items);
    let report = session.rotate_master_key_with_progress(&new_key, &mut |done, total| {
        progress.update(done, total)
    })?;
    drop(progress);
    let done = render::MasterRotated {
        action: "rotated_master_key",
        keys: report.keys,
        key_id: report.key_id,
        new_key_file: new_key_file.display().to_string(),
    };
    render::report(json, &done, || {
        format!(
            "rewrapped {} tenant data keys under master key {}; the old key no longer opens the store: use {}",
            report.keys,
            report.key_id,
            new_key_file.display()
        )
    })
}

/// `rotate-master-key --to-key-provider SPEC [--dry-run]`: moves the master key to another
/// provider (the spec is checked by a dry run too).
pub(super) fn to_provider(g: &Global, spec: &str, dry_run: bool, json: bool) -> Result<Vec<u8>> {
    let provider =
        tbsecrets::key_provider_from_spec(spec).map_err(|e| e.prefixed_by("--to-key-provider"))?;
    let described = provider.describe();
    if dry_run {
        return master(g, None, true, json);
    }
    let store = open_existing(g)?;
    let session = admin(&store, g)?;
    let progress = Progress::new("rewrapping data keys", Unit::Items);
    let report =
        session.rotate_key_provider(provider, &mut |done, total| progress.update(done, total))?;
    drop(progress);
    let done = render::ProviderRotated {
        action: "rotated_master_key",
        keys: report.keys,
        key_id: report.key_id,
        key_provider: described.clone(),
    };
    render::report(json, &done, || {
        format!(
            "rewrapped {} tenant data keys under master key {} held by {described}; the old key no longer opens the store: use --key-provider",
            report.keys, report.key_id
        )
    })
}

/// `rotate-tenant-key [--dry-run]` of the tenant of `--tenant`.
pub(super) fn tenant(g: &Global, dry_run: bool, json: bool) -> Result<Vec<u8>> {
    let store = open_existing(g)?;
    let session = admin(&store, g)?;
    if dry_run {
        let plan = session.plan_tenant_key_rotation(&g.tenant)?;
        let planned =
            render::RotationPlanned::new("planned_tenant_key_rotation", Some(&g.tenant), &plan);
        return render::report(json, &planned, || {
            format!(
                "dry run: would give tenant '{}' data key {} and re-encrypt {} versions of {} secrets; {}; nothing was changed",
                g.tenant,
                plan.key_id,
                plan.versions,
                plan.secrets,
                estimate(&plan, "reading, opening and resealing", "versions"),
            )
        });
    }
    let progress = Progress::new("re-encrypting versions", Unit::Items);
    let report = session.rotate_tenant_key_with_progress(&g.tenant, &mut |done, total| {
        progress.update(done, total)
    })?;
    drop(progress);
    let done = render::TenantRotated {
        action: "rotated_tenant_key",
        tenant: &g.tenant,
        key_id: report.key_id,
        versions: report.versions,
    };
    render::report(json, &done, || {
        format!(
            "tenant '{}' now uses data key {}; re-encrypted {} versions",
            g.tenant, report.key_id, report.versions
        )
    })
}

/// "estimated 1.2 s (from …)" for a plan.
fn estimate(plan: &RotationPlan, work: &str, items: &str) -> String {
    let seconds = plan.estimated_micros as f64 / 1e6;
    format!(
        "estimated {seconds:.3} s (timed on this machine: {work} a sample of {} {items}, scaled; the final writes are not included)",
        plan.sampled
    )
}
