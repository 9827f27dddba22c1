//! Which master key the CLI uses, and the key file `init` writes beside a store.
//!
//! Sources, first match wins: `--master-key-fd N` or `--master-key-stdin` (read once by
//! [`load_from_stream`] before the command runs), `--key-file`, `TBS_MASTER_KEY`,
//! `TBS_MASTER_KEY_FILE`, then the key file beside the store. With `--key-provider`
//! (or `TBS_KEY_PROVIDER`) other than `raw`, the provider holds the key instead
//! ([`provider_for_store`]).

use crate::args::Global;
use std::fs::File;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use tbsecrets::{key_provider_from_spec, master_key_from_env, read_key_file};
use tbsecrets::{Error, KeyProvider, MasterKey, Result};
use zeroize::Zeroizing;

/// Longest key text accepted from a descriptor or stdin (a key is 44 base64 characters).
const MAX_KEY_TEXT: u64 = 4096;

/// The key read from a descriptor or stdin, if one was given.
static STREAM_KEY: OnceLock<MasterKey> = OnceLock::new();

/// Reads the master key from descriptor `fd` (taking ownership and closing it) or, when
/// `stdin` is set, from standard input, to end of file; the key then wins over every other
/// source. Refuses stdout and stderr, a descriptor that is not open, and anything that is not
/// one base64 key.
pub fn load_from_stream(fd: Option<i32>, stdin: bool) -> Result<()> {
    let (mut reader, what): (Box<dyn Read>, String) = match (fd, stdin) {
        (Some(fd), _) => {
            if fd == 1 || fd == 2 || fd < 0 {
                return Err(Error::invalid(format!(
                    "--master-key-fd {fd}: not a descriptor to read a key from"
                )));
            }
            // SAFETY: F_GETFD only queries the descriptor table.
            if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
                return Err(Error::invalid(format!(
                    "--master-key-fd {fd}: the descriptor is not open"
                )));
            }
            // SAFETY: the descriptor is open (checked above) and the user handed it to this
            // process for the key; nothing else in the CLI uses it, so owning (and closing)
            // it here is sound.
            let owned = unsafe { OwnedFd::from_raw_fd(fd) };
            (Box::new(File::from(owned)), format!("--master-key-fd {fd}"))
        }
        (None, true) => (Box::new(std::io::stdin()), "--master-key-stdin".to_owned()),
        (None, false) => return Ok(()),
    };
    let mut text = Zeroizing::new(Vec::with_capacity(MAX_KEY_TEXT as usize + 1));
    reader
        .by_ref()
        .take(MAX_KEY_TEXT + 1)
        .read_to_end(&mut text)
        .map_err(|e| Error::invalid(format!("{what}: cannot read the key: {e}")))?;
    drop(reader);
    if text.len() as u64 > MAX_KEY_TEXT {
        return Err(Error::invalid(format!(
            "{what}: expected one base64 master key, got more than {MAX_KEY_TEXT} bytes"
        )));
    }
    let text = std::str::from_utf8(&text)
        .map_err(|_| Error::invalid(format!("{what}: the key is not UTF-8 base64 text")))?;
    let key = MasterKey::from_base64(text)
        .map_err(|e| Error::invalid(format!("{what}: {}", e.message())))?;
    let _ = STREAM_KEY.set(key);
    Ok(())
}

/// The key file `init` generates for a store: `<store>.key`.
pub fn default_key_file(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(".key");
    PathBuf::from(name)
}

/// The configured key: from a descriptor or stdin, else `--key-file`, else the environment,
/// else none.
pub fn configured_key(key_file: Option<&Path>) -> Result<Option<MasterKey>> {
    if let Some(key) = STREAM_KEY.get() {
        return Ok(Some(key.clone()));
    }
    match key_file {
        Some(path) => read_key_file(path).map(Some),
        None => master_key_from_env(),
    }
}

/// The key for an existing store: the configured one, else the key file beside the store.
pub fn key_for_store(store: &Path, key_file: Option<&Path>) -> Result<MasterKey> {
    if let Some(key) = configured_key(key_file)? {
        return Ok(key);
    }
    let beside = default_key_file(store);
    if beside.exists() {
        return read_key_file(&beside);
    }
    Err(Error::invalid(format!(
        "no master key: use --key-file, --master-key-fd or --master-key-stdin, set TBS_MASTER_KEY_FILE (or TBS_MASTER_KEY), or keep the key file {} that `tbsecrets init` wrote",
        beside.display()
    )))
}

/// The provider `--key-provider` (or `TBS_KEY_PROVIDER`) names, or `None` for `raw` (then
/// the key comes from the sources above). A provider spec with a raw key source as well is
/// INVALID_ARGUMENT: one of them would be silently ignored.
pub fn configured_provider(g: &Global) -> Result<Option<Arc<dyn KeyProvider>>> {
    let spec = match g.key_provider.as_deref().map(str::trim) {
        None | Some("" | "raw") => return Ok(None),
        Some(spec) => spec,
    };
    if g.key_file.is_some() || g.master_key_fd.is_some() || g.master_key_stdin {
        return Err(Error::invalid(
            "--key-provider names who holds the key: --key-file, --master-key-fd and --master-key-stdin go with `raw` only",
        ));
    }
    key_provider_from_spec(spec)
        .map(Some)
        .map_err(|e| e.prefixed_by("--key-provider"))
}

/// The provider of an existing store: the configured provider, else its raw key
/// ([`key_for_store`]).
pub fn provider_for_store(store: &Path, g: &Global) -> Result<Arc<dyn KeyProvider>> {
    match configured_provider(g)? {
        Some(provider) => Ok(provider),
        None => Ok(Arc::new(key_for_store(store, g.key_file.as_deref())?)),
    }
}
