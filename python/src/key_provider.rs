//! Host key providers in Python: any object with `wrap(aad, plaintext) -> bytes` and
//! `unwrap(aad, wrapped) -> bytes` (a KMS client, an HSM API) holds the master key, adapted to
//! the core's `KeyWrapper` (wrapped blob format, docs/FORMATS.md). The core calls it with the
//! GIL released; each call takes the GIL. An exception it raises becomes `KeyUnavailable`
//! chained to it (`__cause__`), except `tbsecrets.Integrity` raised by `unwrap` (the bytes are
//! not its own: another key), which is `Integrity` (`WrongMasterKey` when opening).

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tbsecrets::{Error, ErrorCode, KeyProvider, KeyWrapper, MasterKey, Result, WrapperProvider};
use zeroize::Zeroizing;

thread_local! {
    /// The exception the provider last raised on this thread, to chain to the
    /// `KeyUnavailable` the operation raises (the core runs on the caller's thread).
    static CAUSE: RefCell<Option<PyErr>> = const { RefCell::new(None) };
}

/// Takes the exception a provider raised during the call that just ended on this thread.
pub(crate) fn take_cause() -> Option<PyErr> {
    CAUSE.with(|cause| cause.borrow_mut().take())
}

/// A Python object holding the master key.
struct PyKeyWrapper {
    provider: Py<PyAny>,
    description: String,
}

impl PyKeyWrapper {
    /// Calls `provider.<method>(aad, input)` with the GIL and copies the `bytes` it returns.
    fn call(
        &self,
        method: &str,
        aad: &[u8],
        input: &[u8],
    ) -> tbsecrets::Result<Zeroizing<Vec<u8>>> {
        Python::attach(|py| {
            let outcome = self
                .provider
                .call_method1(py, method, (PyBytes::new(py, aad), PyBytes::new(py, input)))
                .and_then(|result| result.extract::<Vec<u8>>(py));
            match outcome {
                Ok(bytes) => Ok(Zeroizing::new(bytes)),
                Err(raised) => {
                    let what = raised
                        .get_type(py)
                        .name()
                        .map(|name| name.to_string())
                        .unwrap_or_else(|_| "exception".to_owned());
                    let detail = raised
                        .value(py)
                        .str()
                        .map(|text| text.to_string())
                        .unwrap_or_default();
                    // `tbsecrets.Integrity` (or `WrongMasterKey`) from `unwrap`: the bytes are
                    // not the provider's own (another key), not an unreachable provider.
                    let not_its_own = method == "unwrap"
                        && (raised.is_instance_of::<crate::Integrity>(py)
                            || raised.is_instance_of::<crate::WrongMasterKey>(py));
                    let message = format!(
                        "the key provider ({}) failed to {method}: {what}: {detail}",
                        self.description
                    );
                    if not_its_own {
                        return Err(Error::integrity(message));
                    }
                    CAUSE.with(|cause| *cause.borrow_mut() = Some(raised));
                    Err(Error::new(ErrorCode::KeyUnavailable, message))
                }
            }
        })
    }
}

impl KeyWrapper for PyKeyWrapper {
    fn describe(&self) -> String {
        self.description.clone()
    }

    fn wrap(&self, aad: &[u8], plaintext: &[u8]) -> tbsecrets::Result<Vec<u8>> {
        let mut wrapped = self.call("wrap", aad, plaintext)?;
        Ok(std::mem::take(&mut *wrapped))
    }

    fn unwrap(&self, aad: &[u8], wrapped: &[u8]) -> tbsecrets::Result<Zeroizing<Vec<u8>>> {
        self.call("unwrap", aad, wrapped)
    }
}

/// The core key provider for a spec string, or for a Python object with callable `wrap` and
/// `unwrap`; its
/// description is its `description` attribute (a `str`, or a method returning one), else its
/// type's name. INVALID_ARGUMENT for an object without the two methods.
pub(crate) fn key_provider_from_py(
    provider: &Bound<'_, PyAny>,
) -> tbsecrets::Result<Arc<dyn KeyProvider>> {
    if let Ok(spec) = provider.cast::<PyString>() {
        // A provider spec ("raw", "command:…", "pkcs11:…", docs/KEY-CUSTODY.md).
        let spec = spec
            .to_cow()
            .map_err(|_| Error::invalid("key_provider is not valid UTF-8"))?;
        return tbsecrets::key_provider_from_spec(&spec);
    }
    for method in ["wrap", "unwrap"] {
        let callable = provider
            .getattr(method)
            .map(|attribute| attribute.is_callable())
            .unwrap_or(false);
        if !callable {
            return Err(Error::invalid(format!(
                "key_provider has no {method}() method: it needs wrap(aad, plaintext) and unwrap(aad, wrapped)"
            )));
        }
    }
    Ok(Arc::new(WrapperProvider::new(PyKeyWrapper {
        provider: provider.clone().unbind(),
        description: description_of(provider),
    })))
}

/// What a provider says it is (for messages), else its type's name.
fn description_of(provider: &Bound<'_, PyAny>) -> String {
    let described = provider.getattr("description").ok().and_then(|attribute| {
        let value = if attribute.is_callable() {
            attribute.call0().ok()?
        } else {
            attribute
        };
        value.extract::<String>().ok()
    });
    described.unwrap_or_else(|| {
        provider
            .get_type()
            .name()
            .map(|name| name.to_string())
            .unwrap_or_else(|_| "python key provider".to_owned())
    })
}

/// The provider of `open`'s arguments: `key_provider=` (a spec or an object), `master_key=`,
/// `master_key_file=` (at most one), else `TBS_KEY_PROVIDER`, else the raw key of the
/// environment.
pub fn provider_of(
    key: Option<MasterKey>,
    key_file: Option<PathBuf>,
    given_provider: Option<Arc<dyn KeyProvider>>,
) -> Result<Arc<dyn KeyProvider>> {
    let given = usize::from(key.is_some())
        + usize::from(key_file.is_some())
        + usize::from(given_provider.is_some());
    if given > 1 {
        return Err(Error::invalid(
            "give one of master_key, master_key_file and key_provider",
        ));
    }
    if let Some(provider) = given_provider {
        return Ok(provider);
    }
    if let Some(key) = key {
        return Ok(Arc::new(key));
    }
    if let Some(file) = key_file {
        return Ok(Arc::new(tbsecrets::read_key_file(&file)?));
    }
    if let Some(provider) = tbsecrets::key_provider_from_env()? {
        return Ok(provider);
    }
    match tbsecrets::master_key_from_env()? {
        Some(key) => Ok(Arc::new(key)),
        None => Err(Error::invalid(
            "no master key: give master_key=, master_key_file=, key_provider=, or set TBS_MASTER_KEY / TBS_MASTER_KEY_FILE / TBS_KEY_PROVIDER",
        )),
    }
}

/// `key_cache_ttl_seconds=`: a positive number of seconds, or `None` for the handle's
/// lifetime.
pub fn cache_ttl(seconds: Option<f64>) -> Result<Option<Duration>> {
    match seconds {
        None => Ok(None),
        Some(s) if s.is_finite() && s > 0.0 => Ok(Some(Duration::from_secs_f64(s))),
        Some(s) => Err(Error::invalid(format!(
            "key_cache_ttl_seconds must be a positive number of seconds, got {s}"
        ))),
    }
}
