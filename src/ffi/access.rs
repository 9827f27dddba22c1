//! Session handles acting as principals, key rotation, usage reports and the audit log.

use super::args::{arg, OptOut, Out};
use super::boundary::guard;
use super::buffer::buffer_from;
use super::open::new_handle;
use super::{tbs_buffer, tbs_role, tbs_status, tbs_store};
use crate::access::{Actor, Principal};
use crate::error::{Error, ErrorCode, Result};
use crate::model::validate_tenant;
use crate::{MasterKey, SecretInfo, Session};
use std::ffi::c_char;
use std::path::Path;
use std::time::Duration;

/// The longest principal id, in bytes.
const MAX_PRINCIPAL_ID_BYTES: usize = 255;

/// Checks a principal id: 1–255 bytes, no control characters (it goes to the audit log).
fn validate_principal_id(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::invalid(
            "principal_id must not be empty (pass NULL for none)",
        ));
    }
    if id.len() > MAX_PRINCIPAL_ID_BYTES {
        return Err(Error::invalid(format!(
            "principal_id is {} bytes long; the limit is {MAX_PRINCIPAL_ID_BYTES} bytes",
            id.len()
        )));
    }
    if id.chars().any(char::is_control) {
        return Err(Error::invalid(
            "principal_id must not contain control characters",
        ));
    }
    Ok(())
}

/// Derives a session handle acting as the principal (`tenant`, `role`, `principal_id`) from
/// the root handle `store`, and writes it to `*out_session`.
///
/// - `tenant`: NUL-terminated UTF-8, the principal's own tenant (the tenant rules, see
///   docs/ARCHITECTURE.md, "The model").
/// - `role`: one of `TBS_ROLE_SYS_ADMIN`, `TBS_ROLE_TENANT_ADMIN`, `TBS_ROLE_CUSTOMER_USER`,
///   `TBS_ROLE_SERVICE`.
/// - `principal_id`: NUL-terminated UTF-8 id of the user or service for the audit log (1–255
///   bytes, no control characters), or NULL for none. Never used for decisions.
///
/// The session shares the store (cache, connections, materialised files, audit log) and is
/// cheap to create. Every `tbs_store_*` function accepts it; each operation is checked
/// against the store's policy (`tbs_options.policy_json`) before anything happens, fails
/// with `TBS_PERMISSION_DENIED` when not granted, and is audited under the principal,
/// denied attempts included. Release it with `tbs_store_close`, which frees only the session.
/// If the root handle is closed first, the session's calls fail with `TBS_CLOSED`.
///
/// Only the root handle (from `tbs_store_open`) may derive sessions: a session handle as
/// `store` fails with `TBS_PERMISSION_DENIED`, so a principal can never widen its own rights.
/// Invalid arguments fail with `TBS_INVALID_ARGUMENT`.
///
/// # Safety
/// `store` must be a live handle; strings NULL or valid as described; `out_session`
/// writable.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_session(
    store: *mut tbs_store,
    tenant: *const c_char,
    role: tbs_role,
    principal_id: *const c_char,
    out_session: *mut *mut tbs_store,
) -> tbs_status {
    guard(|| {
        let out_session: Out<*mut tbs_store> = arg!(out_session);
        let handle: &tbs_store = arg!(store);
        let tenant: &str = arg!(tenant);
        let id: Option<&str> = arg!(principal_id);
        let role = arg!(role);
        validate_tenant(tenant)?;
        if let Some(id) = id {
            validate_principal_id(id)?;
        }
        handle.root_only("derive sessions")?;
        let mut principal = Principal::new(tenant, role);
        if let Some(id) = id {
            principal = principal.with_id(id);
        }
        out_session.put(new_handle(
            handle.storage.clone(),
            Actor::Principal(principal),
        ))
    })
}

/// Replaces the master key by the 32 raw bytes `new_key[0..new_key_len)`: every tenant data
/// key is rewrapped under it (values are not re-encrypted): in memory, then written in one
/// short transaction, so readers keep reading meanwhile. Afterwards
/// only the new key opens the store (`TBS_WRONG_MASTER_KEY` for the old one); this handle and
/// its sessions switch to it at once.
///
/// `out_report_json`: receives `{"keys":N,"versions":0,"key_id":N}` (data keys rewrapped, the
/// new master key id); NULL if not wanted. Needs WRITE in every tenant (default policy:
/// `TBS_ROLE_SYS_ADMIN` only), else `TBS_PERMISSION_DENIED`; a key that is not 32 bytes is
/// `TBS_INVALID_ARGUMENT`. The library keeps no copy of `new_key` beyond its own key holder.
///
/// # Safety
/// `store` must be a live handle; `new_key` readable for `new_key_len` bytes;
/// `out_report_json` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_rotate_master_key(
    store: *mut tbs_store,
    new_key: *const u8,
    new_key_len: usize,
    out_report_json: *mut tbs_buffer,
) -> tbs_status {
    guard(|| {
        let out_report_json: OptOut<tbs_buffer> = arg!(out_report_json);
        let s: Session = arg!(store);
        let new_key = MasterKey::from_bytes(arg!(new_key, new_key_len))?;
        out_report_json.json(&s.rotate_master_key(&new_key)?)
    })
}

/// Gives `tenant` (NUL-terminated UTF-8) a new data key and re-encrypts every kept version of
/// every secret of the tenant under it, in batches of 256 versions (a transaction each, a
/// version updated meanwhile left alone); other tenants are untouched. If interrupted, call
/// it again to finish. `TBS_NOT_FOUND` for a tenant without a data key.
///
/// `out_report_json`: receives `{"keys":1,"versions":N,"key_id":N}` (versions re-encrypted,
/// the new data key id); NULL if not wanted. Needs WRITE in the tenant (default policy:
/// `TBS_ROLE_TENANT_ADMIN` of the tenant, `TBS_ROLE_SYS_ADMIN`), else `TBS_PERMISSION_DENIED`.
///
/// # Safety
/// `store` must be a live handle; `tenant` valid; `out_report_json` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_rotate_tenant_key(
    store: *mut tbs_store,
    tenant: *const c_char,
    out_report_json: *mut tbs_buffer,
) -> tbs_status {
    guard(|| {
        let out_report_json: OptOut<tbs_buffer> = arg!(out_report_json);
        let s: Session = arg!(store);
        out_report_json.json(&s.rotate_tenant_key(arg!(tenant))?)
    })
}

/// What `tbs_store_rotate_master_key` would do, changing nothing (a dry run): the data keys
/// and tenants it would rewrap and an estimated time, from rewrapping a sample of up to 256
/// data keys in memory under a throwaway key (the final write is not included).
///
/// `out_plan_json`: receives `{"tenants":N,"keys":N,"secrets":0,"versions":0,"key_id":N,
/// "sampled":N,"estimated_micros":N}` (`key_id`: the id the new master key would get); NULL
/// if not wanted. Needs what the rotation needs (WRITE in every tenant), else
/// `TBS_PERMISSION_DENIED`. Writes nothing: no audit record, no anchor change.
///
/// # Safety
/// `store` must be a live handle; `out_plan_json` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_plan_master_key_rotation(
    store: *mut tbs_store,
    out_plan_json: *mut tbs_buffer,
) -> tbs_status {
    guard(|| {
        let out_plan_json: OptOut<tbs_buffer> = arg!(out_plan_json);
        let s: Session = arg!(store);
        out_plan_json.json(&s.plan_master_key_rotation()?)
    })
}

/// What `tbs_store_rotate_tenant_key` would do for `tenant` (NUL-terminated UTF-8), changing
/// nothing (a dry run): the versions and secrets it would re-encrypt and an estimated time,
/// from reading, opening and resealing a sample of up to 256 versions under a throwaway key
/// (the writes are not included).
///
/// `out_plan_json`: receives `{"tenants":1,"keys":1,"secrets":N,"versions":N,"key_id":N,
/// "sampled":N,"estimated_micros":N}` (`key_id`: the tenant's next data key id); NULL if not
/// wanted. `TBS_NOT_FOUND` for a tenant without a data key (it never stored a secret); needs
/// WRITE in the tenant, else `TBS_PERMISSION_DENIED`. Writes nothing.
///
/// # Safety
/// `store` must be a live handle; `tenant` valid; `out_plan_json` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_plan_tenant_key_rotation(
    store: *mut tbs_store,
    tenant: *const c_char,
    out_plan_json: *mut tbs_buffer,
) -> tbs_status {
    guard(|| {
        let out_plan_json: OptOut<tbs_buffer> = arg!(out_plan_json);
        let s: Session = arg!(store);
        out_plan_json.json(&s.plan_tenant_key_rotation(arg!(tenant))?)
    })
}

/// Shared body of the two usage reports.
///
/// # Safety
/// As the public functions.
unsafe fn usage_report(
    store: *mut tbs_store,
    tenant: *const c_char,
    days: u32,
    out_json: *mut tbs_buffer,
    stale: bool,
) -> tbs_status {
    guard(|| {
        let out_json: Out<tbs_buffer> = arg!(out_json);
        let s: Session = arg!(store);
        let tenant = arg!(tenant);
        let age = Duration::from_secs(u64::from(days) * 86_400);
        let infos: Vec<SecretInfo> = if stale {
            s.stale(tenant, age)?
        } else {
            s.unused(tenant, age)?
        };
        out_json.json(&infos)
    })
}

/// The secrets of `tenant` not got or resolved for at least `days` days (never used ones
/// count as unused), as a JSON array of info objects (as `tbs_store_info`) in `*out_json`,
/// in name order. Usage counters are written first. Needs READ in the tenant.
///
/// # Safety
/// `store` must be a live handle; `tenant` valid; `out_json` writable.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_unused(
    store: *mut tbs_store,
    tenant: *const c_char,
    days: u32,
    out_json: *mut tbs_buffer,
) -> tbs_status {
    // SAFETY: forwarded contract.
    unsafe { usage_report(store, tenant, days, out_json, false) }
}

/// The secrets of `tenant` whose value was last written at least `days` days ago
/// (candidates for value rotation), as a JSON array of info objects (as `tbs_store_info`) in `*out_json`, in name
/// order. Needs READ in the tenant.
///
/// # Safety
/// `store` must be a live handle; `tenant` valid; `out_json` writable.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_stale(
    store: *mut tbs_store,
    tenant: *const c_char,
    days: u32,
    out_json: *mut tbs_buffer,
) -> tbs_status {
    // SAFETY: forwarded contract.
    unsafe { usage_report(store, tenant, days, out_json, true) }
}

/// Verifies an audit log with this store's audit key: every line's MAC, its sequence number
/// and its link to the line before, so an edited, deleted, inserted or reordered line is
/// found. Batched use records are written first.
///
/// - `log_path`: NUL-terminated UTF-8 path of the log to verify, or NULL for the one this
///   store writes (`TBS_INVALID_ARGUMENT` when it writes none).
/// - `out_report_json`: receives `{"records":N,"last_seq":N,"problem":null}` or, for a
///   broken log, `{"records":N,"last_seq":N,"problem":{"line":N,"reason":"..."}}` (records
///   verified before the first bad line); NULL if not wanted.
///
/// Returns `TBS_OK` when the log is intact, `TBS_INTEGRITY` with the message
/// "audit log line N: reason" when it is not — and then, unlike other failures,
/// `*out_report_json` is filled too (free it). `TBS_NOT_FOUND` when the file does not exist.
/// Needs READ in every tenant (the root handle; default policy: `TBS_ROLE_SYS_ADMIN`), else
/// `TBS_PERMISSION_DENIED`.
///
/// # Safety
/// `store` must be a live handle; `log_path` NULL or valid; `out_report_json` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_verify_audit_log(
    store: *mut tbs_store,
    log_path: *const c_char,
    out_report_json: *mut tbs_buffer,
) -> tbs_status {
    guard(|| {
        let out_report_json: OptOut<tbs_buffer> = arg!(out_report_json);
        let s: Session = arg!(store);
        let log_path: Option<&str> = arg!(log_path);
        let verification = s.verify_audit_log(log_path.map(Path::new))?;
        out_report_json.json(&verification)?;
        verification.into_result().map(|_| ())
    })
}

/// The path of the audit log file this store writes, as text in `*out_path`;
/// `TBS_NOT_FOUND` when it writes none (auditing disabled, or only to a callback). Needs READ
/// in every tenant, like `tbs_store_verify_audit_log`.
///
/// # Safety
/// `store` must be a live handle; `out_path` writable.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_audit_log_path(
    store: *mut tbs_store,
    out_path: *mut tbs_buffer,
) -> tbs_status {
    guard(|| {
        let out_path: Out<tbs_buffer> = arg!(out_path);
        let s: Session = arg!(store);
        let path = s.audit_log_path()?.ok_or_else(|| {
            Error::new(
                ErrorCode::NotFound,
                "this store writes no audit log file (auditing is disabled or goes only to a callback)",
            )
        })?;
        out_path.put(buffer_from(path.as_os_str().as_encoded_bytes()))
    })
}

#[cfg(test)]
mod tests {
    use super::super::args::parse_role;
    use super::super::{
        TBS_ROLE_CUSTOMER_USER, TBS_ROLE_SERVICE, TBS_ROLE_SYS_ADMIN, TBS_ROLE_TENANT_ADMIN,
    };
    use super::*;
    use crate::access::Role;

    #[test]
    fn roles_map_to_their_constants_and_others_are_rejected() {
        for (value, role) in [
            (TBS_ROLE_SYS_ADMIN, Role::SysAdmin),
            (TBS_ROLE_TENANT_ADMIN, Role::TenantAdmin),
            (TBS_ROLE_CUSTOMER_USER, Role::CustomerUser),
            (TBS_ROLE_SERVICE, Role::Service),
        ] {
            assert_eq!(parse_role(value).unwrap(), role);
        }
        for value in [0, 5, u32::MAX] {
            let err = parse_role(value).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidArgument);
            assert!(err.message().contains("unknown role"), "{err}");
        }
    }

    #[test]
    fn principal_ids_are_short_printable_text() {
        validate_principal_id("rule-engine").unwrap();
        validate_principal_id(&"x".repeat(MAX_PRINCIPAL_ID_BYTES)).unwrap();
        for bad in [
            String::new(),
            "x".repeat(MAX_PRINCIPAL_ID_BYTES + 1),
            "a\nb".to_owned(),
        ] {
            assert_eq!(
                validate_principal_id(&bad).unwrap_err().code(),
                ErrorCode::InvalidArgument
            );
        }
    }
}
