//! TEXT_FILE materialisation: a TEXT_FILE placeholder can be replaced by the path of a file
//! holding the value, for C programs whose config wants a path (a CA file).
//!
//! Files live in a private directory: owned by the effective user, mode 0700 (nothing for group
//! or others), and not a symlink. They are written 0600 with `O_CREAT|O_EXCL|O_NOFOLLOW`, so a
//! pre-planted file or symlink is never followed. Each (tenant, secret, version) is written once
//! per handle. The files are removed by [`Materializer::clear`], which the handle calls on
//! close, unless the directory was configured with `keep_on_close` (the CLI renders config
//! files whose referenced files must outlive it), and one by one by [`Materializer::release`]
//! once every holder has given a file back (Java's `MaterializedDocument.close`).
//!
//! A process killed before it could clear leaves its files behind; they carry its pid in their
//! names (`tbsecrets-<pid>-…pem` in a configured directory, `tbsecrets-<pid>-<16 hex>` for a
//! temporary directory), so the next handle that materialises removes those of dead processes
//! (owned by the same user) when it prepares its directory. Kept files (`keep_on_close`) are
//! named without a pid and never removed that way.

use crate::error::{Error, Result};
use foldhash::HashMap;
use parking_lot::Mutex;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Where materialised files go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaterializeOptions {
    /// The directory; created 0700 if absent. An existing one must not be accessible by group
    /// or others.
    pub dir: PathBuf,
    /// Keep the files when the handle closes.
    pub keep_on_close: bool,
}

#[derive(Default)]
struct State {
    /// The directory in use, once created or checked.
    dir: Option<PathBuf>,
    /// Whether this handle created the directory (then `clear` removes it too).
    created_dir: bool,
    files: HashMap<(String, String, u64), PathBuf>,
    /// How many times each file has been handed out and not [released](Materializer::release).
    holds: HashMap<PathBuf, u64>,
    next_id: u64,
}

/// Writes and tracks materialised files of one handle.
pub struct Materializer {
    configured: Option<MaterializeOptions>,
    state: Mutex<State>,
}

impl Materializer {
    /// A materializer over a configured directory, or a fresh private temporary one.
    pub fn new(configured: Option<MaterializeOptions>) -> Materializer {
        Materializer {
            configured,
            state: Mutex::new(State::default()),
        }
    }

    /// The path of a file holding `bytes` for this secret version, written on first use.
    pub fn path_for(&self, tenant: &str, name: &str, version: u64, bytes: &[u8]) -> Result<String> {
        let mut state = self.state.lock();
        let key = (tenant.to_owned(), name.to_owned(), version);
        if let Some(path) = state.files.get(&key).cloned() {
            let text = path_text(&path)?;
            *state.holds.entry(path).or_insert(0) += 1;
            return Ok(text);
        }
        let dir = match &state.dir {
            Some(dir) => dir.clone(),
            None => {
                let (dir, created) = self.prepare_dir()?;
                state.created_dir = created;
                state.dir = Some(dir.clone());
                dir
            }
        };
        state.next_id += 1;
        let path = dir.join(if self.keeps_files() {
            // Outlives this process: no pid, so no later run takes it for a leftover.
            format!("{}-{:016x}-v{version}.pem", file_stem(name), random_u64())
        } else {
            format!(
                "{FILE_PREFIX}{}-{}-{}-v{version}.pem",
                std::process::id(),
                state.next_id,
                file_stem(name)
            )
        });
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::storage(format!("cannot create {}: {e}", path.display())))?;
        file.write_all(bytes)?;
        let text = path_text(&path)?;
        state.holds.insert(path.clone(), 1);
        state.files.insert(key, path);
        Ok(text)
    }

    /// Gives back paths [`Materializer::path_for`] handed out (once per time it handed each
    /// out): a file no holder uses any more is removed at once, and a later `path_for` writes
    /// it afresh. Paths this materializer does not hold (already cleared, or never its own)
    /// are ignored, so no other file can be removed through it.
    pub fn release(&self, paths: &[String]) -> Result<()> {
        let mut state = self.state.lock();
        let mut first_error = None;
        for path in paths {
            let path = PathBuf::from(path);
            let Some(holds) = state.holds.get_mut(&path) else {
                continue;
            };
            *holds = holds.saturating_sub(1);
            if *holds > 0 {
                continue;
            }
            state.holds.remove(&path);
            state.files.retain(|_, p| *p != path);
            if let Err(e) = fs::remove_file(&path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    fn keeps_files(&self) -> bool {
        self.configured.as_ref().is_some_and(|o| o.keep_on_close)
    }

    fn prepare_dir(&self) -> Result<(PathBuf, bool)> {
        let dir = match &self.configured {
            Some(options) => options.dir.clone(),
            None => {
                let tmp = std::env::temp_dir();
                crate::hardening::remove_leftovers(&tmp, DIR_PREFIX, is_dir_suffix);
                tmp.join(format!(
                    "{DIR_PREFIX}{}-{:016x}",
                    std::process::id(),
                    random_u64()
                ))
            }
        };
        let created = match DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
            Err(e) => {
                return Err(Error::storage(format!(
                    "cannot create materialisation directory {}: {e}",
                    dir.display()
                )))
            }
        };
        check_private_dir(&dir)?;
        if !created {
            crate::hardening::remove_leftovers(&dir, FILE_PREFIX, is_file_suffix);
        }
        Ok((dir, created))
    }

    /// Removes every file written so far (and the directory if this handle created it).
    pub fn clear(&self) -> Result<()> {
        let mut state = self.state.lock();
        let mut first_error = None;
        state.holds.clear();
        for (_, path) in state.files.drain() {
            if let Err(e) = fs::remove_file(&path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    first_error.get_or_insert(e);
                }
            }
        }
        if state.created_dir {
            if let Some(dir) = state.dir.take() {
                let _ = fs::remove_dir(&dir);
            }
            state.created_dir = false;
        }
        match first_error {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// Called on close: clears unless configured to keep the files.
    pub fn close(&self) -> Result<()> {
        match &self.configured {
            Some(options) if options.keep_on_close => Ok(()),
            _ => self.clear(),
        }
    }
}

/// Name prefix of the files a handle removes itself (`tbsecrets-<pid>-<n>-<stem>-v<v>.pem`).
const FILE_PREFIX: &str = "tbsecrets-";
/// Name prefix of temporary directories (`tbsecrets-<pid>-<16 hex digits>`).
const DIR_PREFIX: &str = "tbsecrets-";

fn is_file_suffix(rest: &str) -> bool {
    rest.ends_with(".pem")
}

fn is_dir_suffix(rest: &str) -> bool {
    rest.len() == 16 && rest.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Refuses a directory that is a symlink, not a directory, owned by another user, or
/// accessible by group or others (INVALID_ARGUMENT).
fn check_private_dir(dir: &Path) -> Result<()> {
    let meta = fs::symlink_metadata(dir).map_err(|e| {
        Error::storage(format!(
            "cannot inspect materialisation directory {}: {e}",
            dir.display()
        ))
    })?;
    if meta.file_type().is_symlink() || !meta.is_dir() {
        return Err(Error::invalid(format!(
            "materialisation directory {} must be a directory, not a symlink or a file",
            dir.display()
        )));
    }
    // SAFETY: `geteuid` has no preconditions.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(Error::invalid(format!(
            "materialisation directory {} is owned by uid {}, not by this user (uid {me})",
            dir.display(),
            meta.uid()
        )));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::invalid(format!(
            "materialisation directory {} must be accessible by its owner only (mode {mode:04o}); use chmod 700",
            dir.display()
        )));
    }
    Ok(())
}

fn path_text(path: &Path) -> Result<String> {
    path.to_str()
        .map(str::to_owned)
        .ok_or_else(|| Error::invalid(format!("path {} is not UTF-8", path.display())))
}

/// A file-name-safe stem from a secret name (names are not secret, but may hold any character).
fn file_stem(name: &str) -> String {
    let stem: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if stem.is_empty() {
        "secret".to_owned()
    } else {
        stem
    }
}

fn random_u64() -> u64 {
    use aes_gcm::aead::{rand_core::RngCore, OsRng};
    OsRng.next_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_private_reused_and_cleared() {
        let m = Materializer::new(None);
        let a = m.path_for("t", "ca cert/1", 1, b"PEM-A").unwrap();
        assert_eq!(m.path_for("t", "ca cert/1", 1, b"PEM-A").unwrap(), a);
        let b = m.path_for("t", "ca cert/1", 2, b"PEM-B").unwrap();
        assert_ne!(a, b);
        assert_eq!(fs::read(&a).unwrap(), b"PEM-A");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(Path::new(&a)), 0o600);
        let dir = Path::new(&a).parent().unwrap().to_path_buf();
        assert_eq!(mode(&dir), 0o700);
        let file_name = Path::new(&a).file_name().unwrap().to_str().unwrap();
        let own = format!("tbsecrets-{}-", std::process::id());
        assert!(file_name.starts_with(&own), "{file_name}");
        assert!(file_name.ends_with("-ca_cert_1-v1.pem"), "{file_name}");
        m.close().unwrap();
        assert!(!Path::new(&a).exists() && !Path::new(&b).exists() && !dir.exists());
    }

    #[test]
    fn released_files_are_removed_when_no_holder_is_left() {
        let m = Materializer::new(None);
        let a = m.path_for("t", "ca", 1, b"PEM-A").unwrap();
        assert_eq!(m.path_for("t", "ca", 1, b"PEM-A").unwrap(), a, "shared");
        m.release(std::slice::from_ref(&a)).unwrap();
        assert!(Path::new(&a).exists(), "one holder is left");
        let other = tempfile::NamedTempFile::new().unwrap();
        let other_path = other.path().to_str().unwrap().to_owned();
        m.release(&[a.clone(), other_path]).unwrap();
        assert!(!Path::new(&a).exists(), "the last holder removed it");
        assert!(other.path().exists(), "a path it does not hold is ignored");
        let again = m.path_for("t", "ca", 1, b"PEM-A").unwrap();
        assert_eq!(fs::read(&again).unwrap(), b"PEM-A", "written afresh");
        m.close().unwrap();
        assert!(!Path::new(&again).exists());
    }

    #[test]
    fn configured_dir_must_be_private_and_can_be_kept() {
        let parent = tempfile::tempdir().unwrap();
        let open_dir = parent.path().join("open");
        fs::create_dir(&open_dir).unwrap();
        fs::set_permissions(&open_dir, fs::Permissions::from_mode(0o755)).unwrap();
        let m = Materializer::new(Some(MaterializeOptions {
            dir: open_dir,
            keep_on_close: false,
        }));
        let err = m.path_for("t", "n", 1, b"x").unwrap_err();
        assert!(err.message().contains("owner only"), "{err}");

        let kept = Materializer::new(Some(MaterializeOptions {
            dir: parent.path().join("kept"),
            keep_on_close: true,
        }));
        let path = kept.path_for("t", "n", 1, b"x").unwrap();
        kept.close().unwrap();
        assert!(Path::new(&path).exists());
        kept.clear().unwrap();
        assert!(!Path::new(&path).exists());
    }
}
