//! Key providers named by a spec (docs/KEY-CUSTODY.md): the options' provider and data-key
//! cache lifetime, moving a store to another provider, wiping the unwrapped data keys.

use super::args::{arg, OptOut};
use super::boundary::guard;
use super::{tbs_buffer, tbs_options, tbs_status, tbs_store, TBS_OPTIONS_VERSION};
use crate::error::Result;
use crate::{key_provider_from_spec, Session, StorageOptions};
use std::ffi::c_char;
use std::time::Duration;

/// Applies the version 3 fields (`key_provider_spec`, `key_cache_ttl_ms`) to `storage`.
///
/// # Safety
/// `options.key_provider_spec` must be NULL or a NUL-terminated string.
pub(super) unsafe fn apply(options: &tbs_options, storage: &mut StorageOptions) -> Result<()> {
    // SAFETY: forwarded contract.
    let spec: Option<&str> = unsafe {
        super::args::FromC::from_c(options.key_provider_spec, "options.key_provider_spec")
    }?;
    if let Some(spec) = spec {
        storage.key_provider = Some(key_provider_from_spec(spec)?);
    }
    if options.key_cache_ttl_ms > 0 {
        storage.key_cache_ttl = Some(Duration::from_millis(options.key_cache_ttl_ms));
    }
    Ok(())
}

/// Sets `options->key_provider_spec` to `spec` (NUL-terminated UTF-8, e.g.
/// `command:/usr/local/bin/kms-hook key-1` or `pkcs11:module=…,token=…,key=…,pin-file=…`;
/// NULL to unset), after checking that it parses: a malformed spec is `TBS_INVALID_ARGUMENT`
/// naming the problem and leaves `options` unchanged, as is an `options->version` other than
/// `TBS_OPTIONS_VERSION` (older layouts have no such field). The string is not copied: it must
/// stay valid until `tbs_store_open` returns.
///
/// # Safety
/// `options` must be NULL or point to a `tbs_options` filled by `tbs_options_init`; `spec`
/// NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn tbs_options_set_key_provider_spec(
    options: *mut tbs_options,
    spec: *const c_char,
) -> tbs_status {
    guard(|| {
        if options.is_null() {
            return Err(crate::Error::invalid("options must not be NULL"));
        }
        // SAFETY: every layout starts with `version: u32`, readable by the caller's contract.
        let version = unsafe { options.cast::<u32>().read() };
        if version != TBS_OPTIONS_VERSION {
            // An older layout has no such field: writing it would write past the struct.
            return Err(crate::Error::invalid(format!(
                "options.version is {version}, expected {TBS_OPTIONS_VERSION}: initialise the options with tbs_options_init"
            )));
        }
        // SAFETY: a current-layout struct (checked above), valid by the caller's contract.
        let options = unsafe { &mut *options };
        let text: Option<&str> = arg!(spec);
        if let Some(text) = text {
            key_provider_from_spec(text)?;
        }
        options.key_provider_spec = spec;
        Ok(())
    })
}

/// Moves the master key to the provider `spec` names (NUL-terminated UTF-8, as for
/// `tbs_options_set_key_provider_spec`): every tenant data key is unwrapped by the current
/// provider and wrapped by the new one, in memory, then written in one short transaction.
/// Afterwards only the new provider opens the store; this handle switches to it at once.
///
/// `out_report_json`: receives `{"keys":N,"versions":0,"key_id":N}`; NULL if not wanted.
/// A malformed spec is `TBS_INVALID_ARGUMENT`; a provider that cannot be reached (either one)
/// is `TBS_KEY_UNAVAILABLE` and changes nothing. Needs WRITE in every tenant (default policy:
/// `TBS_ROLE_SYS_ADMIN` only), else `TBS_PERMISSION_DENIED`.
///
/// # Safety
/// `store` must be a live handle; `spec` a NUL-terminated string; `out_report_json` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_rotate_key_provider_spec(
    store: *mut tbs_store,
    spec: *const c_char,
    out_report_json: *mut tbs_buffer,
) -> tbs_status {
    guard(|| {
        let out_report_json: OptOut<tbs_buffer> = arg!(out_report_json);
        let s: Session = arg!(store);
        let provider = key_provider_from_spec(arg!(spec))?;
        out_report_json.json(&s.rotate_key_provider(provider, &mut |_, _| {})?)
    })
}

/// Wipes every unwrapped data key the store holds (and the cached values sealed by them):
/// the next use of each key asks the key provider again (e.g. after a token was removed).
/// Done on its own when `key_cache_ttl_ms` runs out. Only the root handle may call it
/// (`TBS_PERMISSION_DENIED` for a session).
///
/// # Safety
/// `store` must be a live handle.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_forget_keys(store: *mut tbs_store) -> tbs_status {
    guard(|| {
        let handle: &tbs_store = arg!(store);
        handle.root_only("forget the store's keys")?;
        handle.storage.forget_keys();
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_spec_leaves_the_options_unchanged() {
        let mut options = std::mem::MaybeUninit::<tbs_options>::uninit();
        // SAFETY: writable memory for one struct.
        assert_eq!(
            unsafe { super::super::tbs_options_init(options.as_mut_ptr()) },
            tbs_status::TBS_OK
        );
        // SAFETY: initialised above.
        let mut options = unsafe { options.assume_init() };
        // SAFETY: valid pointers.
        let status =
            unsafe { tbs_options_set_key_provider_spec(&mut options, c"kms:nope".as_ptr()) };
        assert_eq!(status, tbs_status::TBS_INVALID_ARGUMENT);
        assert!(options.key_provider_spec.is_null());
        let spec = c"command:/opt/kms";
        // SAFETY: valid pointers.
        let status = unsafe { tbs_options_set_key_provider_spec(&mut options, spec.as_ptr()) };
        assert_eq!(status, tbs_status::TBS_OK);
        assert_eq!(options.key_provider_spec, spec.as_ptr());
    }
}
