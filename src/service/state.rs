//! Authenticated store state: what an attacker who can write the store's files, but does not
//! hold the master key, cannot move back unnoticed (docs: SECURITY.md, "Stored state and
//! rollback").
//!
//! - **The state row** (`tbs_meta` key `state`): a store-wide write counter, advanced by every
//!   committed change, and the head of the audit chain (sequence number and MAC of its last
//!   record), sealed together under the state key. Every change reads and rewrites it inside
//!   its own transaction, so the row, the change and the change's audit record commit as one.
//! - **Sealed pointers**: each secret's current-version pointer carries the counter of the
//!   change that set it and a MAC over (tenant, name, type, version, counter, and for a
//!   deleted secret its deletion time). A pointer moved in SQL, or a secret moved in or out of
//!   the deleted state, fails that MAC: the read is INTEGRITY, never the older value.
//! - **The anchor file** beside the store (a copy of the latest state row it has seen,
//!   raised after each commit) and **the audit log's last record**: a database older than
//!   either — an older copy of the file restored, a rolled-back volume — fails to open with
//!   ROLLBACK_DETECTED, naming both counters, until an operator accepts the restore.
//!
//! The state key is derived from the store's reserved data key (the one the audit key comes
//! from): only holders of the master key can compute it, master-key rotation rewraps it and
//! migration carries it, so no seal has to be recomputed.

use crate::audit::ChainHead;
use crate::crypto::mac::MAC_LEN;
use crate::crypto::MacKey;
use crate::error::{Error, ErrorCode, Result};
use crate::file_lock::FileLock;
use crate::model::SecretType;
use crate::store::StoredSecret;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use base64::Engine;
use parking_lot::Mutex;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The environment variable naming the anchor file when the options name none (for a
/// PostgreSQL store, the only default there is).
pub const ANCHOR_FILE_ENV: &str = "TBS_ANCHOR_FILE";

/// Label of the state key derivation (from the reserved data key).
pub(crate) const STATE_KEY_LABEL: &[u8] = b"tbsecrets state v1";

/// Domain label of the state row's tag.
const STATE_LABEL: &[u8] = b"tbsecrets state row v1\0";

/// Domain label of a pointer's seal.
const POINTER_LABEL: &[u8] = b"tbsecrets pointer v1\0";

/// Format byte of the encoded state.
const FORMAT: u8 = 1;

/// Length of the encoded state: format, counter, audit seq, audit MAC, tag.
const ENCODED_LEN: usize = 1 + 8 + 8 + MAC_LEN + MAC_LEN;

/// The metadata flag a schema migration leaves in a store that existed before authenticated
/// state: its pointers are sealed once, by the open that finds the flag.
pub(crate) const ADOPT_FLAG: &str = "state_adopt";

/// The store-wide state: the write counter and the audit chain's head.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StoreState {
    /// Committed changes so far (every rewrite of the state row advances it by one).
    pub counter: u64,
    /// The last audit record's sequence number and MAC (0 and "" before the first).
    pub audit: ChainHead,
}

impl StoreState {
    /// The sealed form: `format (1) | counter (8) | audit seq (8) | audit MAC (32) | tag (32)`.
    pub fn encode(&self, key: &MacKey) -> Vec<u8> {
        let mut value = Vec::with_capacity(ENCODED_LEN);
        value.push(FORMAT);
        value.extend_from_slice(&self.counter.to_be_bytes());
        value.extend_from_slice(&self.audit.seq.to_be_bytes());
        let mut mac = [0u8; MAC_LEN];
        // A head's MAC is always one this library wrote (base64 of 32 bytes).
        let _ = B64.decode_slice(&self.audit.mac, &mut mac);
        value.extend_from_slice(&mac);
        let tag = key.tag(&tagged(&value));
        value.extend_from_slice(&tag);
        value
    }

    /// Reads a sealed state; INTEGRITY when it is malformed or its tag does not verify
    /// (edited, or copied from another store). `what` names where it came from.
    pub fn decode(key: &MacKey, value: &[u8], what: &str) -> Result<StoreState> {
        let tampered = || {
            Error::integrity(format!(
                "{what} fails authentication: edited, or from another store"
            ))
        };
        if value.len() != ENCODED_LEN || value[0] != FORMAT {
            return Err(tampered());
        }
        let (body, tag) = value.split_at(ENCODED_LEN - MAC_LEN);
        if !key.verify(&tagged(body), tag) {
            return Err(tampered());
        }
        let number = |at: usize| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&body[at..at + 8]);
            u64::from_be_bytes(bytes)
        };
        let seq = number(9);
        Ok(StoreState {
            counter: number(1),
            audit: ChainHead {
                seq,
                mac: if seq == 0 {
                    String::new()
                } else {
                    B64.encode(&body[17..17 + MAC_LEN])
                },
            },
        })
    }
}

fn tagged(body: &[u8]) -> Vec<u8> {
    let mut data = Vec::with_capacity(STATE_LABEL.len() + body.len());
    data.extend_from_slice(STATE_LABEL);
    data.extend_from_slice(body);
    data
}

/// What a pointer seal covers besides the tenant and name: the secret's type, its current
/// version, the write counter of the change that set it and, for a deleted secret, when it
/// was deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pointer {
    /// The secret's type.
    pub secret_type: SecretType,
    /// The current version.
    pub version: u64,
    /// The deletion time of a deleted (recoverable) secret; `None` for a live one.
    pub deleted_at: Option<i64>,
}

/// The seal of a current-version pointer.
pub(crate) fn pointer_seal(
    key: &MacKey,
    tenant: &str,
    name: &str,
    pointer: Pointer,
    seal_seq: u64,
) -> [u8; MAC_LEN] {
    key.tag(&pointer_data(tenant, name, pointer, seal_seq))
}

/// The sealed bytes. A live secret's are those of the first format (seals written before
/// soft delete stay valid); a deleted secret's add a marker byte and the deletion time, so
/// that setting or clearing the deletion in SQL breaks the seal.
fn pointer_data(tenant: &str, name: &str, pointer: Pointer, seal_seq: u64) -> Vec<u8> {
    let Pointer {
        secret_type,
        version,
        deleted_at,
    } = pointer;
    let mut data = Vec::with_capacity(POINTER_LABEL.len() + tenant.len() + name.len() + 34);
    data.extend_from_slice(POINTER_LABEL);
    for part in [tenant.as_bytes(), name.as_bytes()] {
        data.extend_from_slice(&(part.len() as u32).to_be_bytes());
        data.extend_from_slice(part);
    }
    data.push(match secret_type {
        SecretType::Text => 0,
        SecretType::TextFile => 1,
    });
    data.extend_from_slice(&version.to_be_bytes());
    data.extend_from_slice(&seal_seq.to_be_bytes());
    if let Some(at) = deleted_at {
        data.push(b'D');
        data.extend_from_slice(&at.to_be_bytes());
    }
    data
}

impl Pointer {
    /// The pointer of a live secret at `version`.
    pub fn live(secret_type: SecretType, version: u64) -> Pointer {
        Pointer {
            secret_type,
            version,
            deleted_at: None,
        }
    }

    /// The pointer a stored secret carries.
    pub fn of(secret: &StoredSecret) -> Pointer {
        Pointer {
            secret_type: secret.secret_type,
            version: secret.version,
            deleted_at: secret.deleted_at,
        }
    }
}

/// INTEGRITY unless the secret's current-version pointer carries a valid seal.
pub(crate) fn verify_pointer(key: &MacKey, secret: &StoredSecret) -> Result<()> {
    let data = pointer_data(
        &secret.tenant,
        &secret.name,
        Pointer::of(secret),
        secret.seal_seq,
    );
    if key.verify(&data, &secret.seal) {
        return Ok(());
    }
    Err(Error::integrity(format!(
        "secret '{}' of tenant '{}': its current-version pointer (version {}) fails authentication: the database was edited",
        secret.name, secret.tenant, secret.version
    )))
}

/// ROLLBACK_DETECTED: the store is at `store` (a `unit`: write counter or audit record) but
/// `what` has seen `seen`.
pub(crate) fn rollback_detected(what: &str, unit: &str, store: u64, seen: u64) -> Error {
    Error::new(
        ErrorCode::RollbackDetected,
        format!(
            "the store is older than {what}: the database is at {unit} {store} but {what} has seen {unit} {seen}; \
             it was restored from an older copy or rolled back. If that was deliberate, accept it with \
             `tbsecrets recover --accept-restore` (audited); otherwise put the newest copy back"
        ),
    )
}

/// The anchor file beside a store: the newest sealed state this machine has seen committed.
/// Raised after each commit (never lowered), not synced: after a crash it may lag the
/// database, which is safe — it is only ever compared as a lower bound.
///
/// Processes take turns through `flock`; the threads of one handle through the mutex around
/// the file, since they share its open file description and `flock` does not tell them apart
/// (two raises could otherwise both read the old state and the lower one write last).
#[derive(Debug)]
pub(crate) struct AnchorFile {
    path: PathBuf,
    file: Mutex<File>,
    /// The highest counter this handle found or wrote in the file: a raise to it or below has
    /// nothing to do (the file only ever goes up), and skips the lock, read and write.
    raised: std::sync::atomic::AtomicU64,
    /// The newest committed state a raise of this handle has asked for: the raise that gets
    /// the file writes it, so that the changes one sync covered write the file once.
    newest: Mutex<Option<StoreState>>,
}

impl AnchorFile {
    /// Opens (creating with mode 0600) the anchor file at `path`.
    pub fn open(path: &Path) -> Result<AnchorFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| {
                Error::storage(format!(
                    "cannot open the anchor file {}: {e}",
                    path.display()
                ))
            })?;
        Ok(AnchorFile {
            path: path.to_owned(),
            file: Mutex::new(file),
            raised: std::sync::atomic::AtomicU64::new(0),
            newest: Mutex::new(None),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The state recorded in the file (`None` when empty); INTEGRITY when it fails
    /// authentication.
    pub fn read(&self, key: &MacKey) -> Result<Option<StoreState>> {
        let file = self.file.lock();
        let _lock = FileLock::new(&file, libc::LOCK_SH, &self.path)?;
        let (bytes, len) = read_anchor_bytes(&file)?;
        self.decode(key, &bytes[..len])
    }

    /// The state in the file's bytes (`None` when it is empty).
    fn decode(&self, key: &MacKey, bytes: &[u8]) -> Result<Option<StoreState>> {
        if bytes.is_empty() {
            return Ok(None);
        }
        let what = format!("the anchor file {}", self.path.display());
        StoreState::decode(key, bytes, &what).map(Some)
    }

    /// Records `state` unless the file already holds a newer one. The changes that one sync
    /// covered mostly write the file once: the raise that gets the file writes the newest
    /// state asked for so far, and those that waited for it find theirs covered.
    pub fn raise(&self, key: &MacKey, state: &StoreState) -> Result<()> {
        use std::sync::atomic::Ordering;
        if self.raised.load(Ordering::Acquire) >= state.counter {
            return Ok(());
        }
        {
            let mut newest = self.newest.lock();
            if newest.as_ref().is_none_or(|n| n.counter < state.counter) {
                *newest = Some(state.clone());
            }
        }
        let file = self.file.lock();
        if self.raised.load(Ordering::Acquire) >= state.counter {
            return Ok(());
        }
        // Every state asked for is one a change committed, synced, before asking; the newest
        // is this one or a later one.
        let state = self.newest.lock().clone().unwrap_or_else(|| state.clone());
        let _lock = FileLock::new(&file, libc::LOCK_EX, &self.path)?;
        let read = read_anchor_bytes(&file);
        // An unreadable anchor is overwritten only by the open that accepted it.
        if let Ok((bytes, len)) = &read {
            if let Ok(Some(current)) = self.decode(key, &bytes[..*len]) {
                if current.counter >= state.counter {
                    self.raised.fetch_max(current.counter, Ordering::AcqRel);
                    return Ok(());
                }
            }
        }
        // A file of exactly one state is overwritten in place; anything else is cut to it.
        let exact = matches!(read, Ok((_, ENCODED_LEN)));
        self.write_locked(&file, key, &state, !exact)?;
        self.raised.fetch_max(state.counter, Ordering::AcqRel);
        Ok(())
    }

    fn write_locked(
        &self,
        file: &File,
        key: &MacKey,
        state: &StoreState,
        truncate: bool,
    ) -> Result<()> {
        let bytes = state.encode(key);
        let mut written = file.write_all_at(&bytes, 0);
        if truncate {
            written = written.and_then(|()| file.set_len(bytes.len() as u64));
        }
        written.map_err(|e| {
            Error::storage(format!(
                "cannot write the anchor file {}: {e}",
                self.path.display()
            ))
        })
    }
}

/// The anchor file's bytes, up to one more than a state holds (a longer file is not a state),
/// and how many there are.
fn read_anchor_bytes(file: &File) -> std::io::Result<([u8; ENCODED_LEN + 1], usize)> {
    let mut bytes = [0u8; ENCODED_LEN + 1];
    let mut len = 0;
    while len < bytes.len() {
        match file.read_at(&mut bytes[len..], len as u64) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((bytes, len))
}

/// The default anchor file of a SQLite store: the store's path plus `.anchor`.
pub(crate) fn default_anchor_path(store: &Path) -> PathBuf {
    let mut path = store.as_os_str().to_owned();
    path.push(".anchor");
    path.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MacKey {
        MacKey::derive(b"k", b"l")
    }

    /// A state at `counter` with no audit record yet.
    fn at(counter: u64) -> StoreState {
        StoreState {
            counter,
            audit: ChainHead::default(),
        }
    }

    #[test]
    fn state_round_trips_and_detects_edits() {
        let state = StoreState {
            counter: 41,
            audit: ChainHead {
                seq: 7,
                mac: B64.encode([9u8; 32]),
            },
        };
        let value = state.encode(&key());
        assert_eq!(StoreState::decode(&key(), &value, "row").unwrap(), state);
        let mut lowered = value.clone();
        lowered[8] = 40;
        let e = StoreState::decode(&key(), &lowered, "row").unwrap_err();
        assert_eq!(e.code(), ErrorCode::Integrity);
        assert!(StoreState::decode(&MacKey::derive(b"x", b"l"), &value, "row").is_err());
        assert!(StoreState::decode(&key(), &value[..40], "row").is_err());
        let empty = StoreState::default().encode(&key());
        assert_eq!(
            StoreState::decode(&key(), &empty, "row").unwrap(),
            StoreState::default()
        );
    }

    #[test]
    fn a_pointer_seal_binds_every_field() {
        let p = |secret_type, version, deleted_at| Pointer {
            secret_type,
            version,
            deleted_at,
        };
        let seal = |t, n, pointer, seq| pointer_seal(&key(), t, n, pointer, seq);
        let base = seal("t", "n", p(SecretType::Text, 3, None), 10);
        let others = [
            seal("t", "n", p(SecretType::Text, 2, None), 10),
            seal("t", "n", p(SecretType::Text, 3, None), 9),
            seal("t", "n", p(SecretType::TextFile, 3, None), 10),
            seal("tn", "", p(SecretType::Text, 3, None), 10),
            seal("t", "m", p(SecretType::Text, 3, None), 10),
            seal("t", "n", p(SecretType::Text, 3, Some(0)), 10),
            seal("t", "n", p(SecretType::Text, 3, Some(5)), 10),
        ];
        for other in others {
            assert_ne!(base, other);
        }
        assert_ne!(others[5], others[6]);
    }

    #[test]
    fn the_anchor_only_rises() {
        let dir = tempfile::tempdir().unwrap();
        let anchor = AnchorFile::open(&dir.path().join("a")).unwrap();
        assert_eq!(anchor.read(&key()).unwrap(), None);
        anchor.raise(&key(), &at(5)).unwrap();
        anchor.raise(&key(), &at(3)).unwrap();
        assert_eq!(anchor.read(&key()).unwrap(), Some(at(5)));
        anchor.raise(&key(), &at(6)).unwrap();
        assert_eq!(anchor.read(&key()).unwrap(), Some(at(6)));
    }

    /// The raise that gets the file writes the newest state asked for (here one another
    /// thread posted), so that the raise of the later change finds its state covered.
    #[test]
    fn a_raise_writes_the_newest_state_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let anchor = AnchorFile::open(&dir.path().join("a")).unwrap();
        *anchor.newest.lock() = Some(at(9));
        anchor.raise(&key(), &at(7)).unwrap();
        assert_eq!(anchor.read(&key()).unwrap(), Some(at(9)));
        anchor.raise(&key(), &at(8)).unwrap();
        anchor.raise(&key(), &at(9)).unwrap();
        assert_eq!(anchor.read(&key()).unwrap(), Some(at(9)));
        anchor.raise(&key(), &at(10)).unwrap();
        assert_eq!(anchor.read(&key()).unwrap(), Some(at(10)));
    }

    /// A file that is not exactly one state (bytes after it, or garbage longer than one) is
    /// cut to the state a raise writes; one that is exactly a state is overwritten in place.
    #[test]
    fn a_raise_leaves_exactly_one_state_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a");
        let mut trailing = at(3).encode(&key());
        trailing.extend_from_slice(&[7u8; 200]);
        for (content, counter) in [(trailing, 4), (vec![b'x'; 500], 5), (Vec::new(), 6)] {
            std::fs::write(&path, &content).unwrap();
            let anchor = AnchorFile::open(&path).unwrap();
            anchor.raise(&key(), &at(counter)).unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), at(counter).encode(&key()));
            anchor.raise(&key(), &at(counter + 10)).unwrap();
            assert_eq!(
                std::fs::read(&path).unwrap(),
                at(counter + 10).encode(&key())
            );
        }
    }

    /// The threads of one handle share the file's open description, which `flock` does not
    /// tell apart: raised from many threads at once, the anchor still ends at the highest
    /// state, never at one a slower thread read past.
    #[test]
    fn concurrent_raises_of_one_handle_leave_the_highest_state() {
        let dir = tempfile::tempdir().unwrap();
        let anchor = AnchorFile::open(&dir.path().join("a")).unwrap();
        const THREADS: u64 = 8;
        const RAISES: u64 = 300;
        for round in 0..20 {
            let base = round * THREADS * RAISES;
            std::thread::scope(|s| {
                for t in 0..THREADS {
                    let anchor = &anchor;
                    s.spawn(move || {
                        for i in 0..RAISES {
                            anchor
                                .raise(&key(), &at(base + i * THREADS + t + 1))
                                .unwrap();
                        }
                    });
                }
            });
            let highest = base + THREADS * RAISES;
            assert_eq!(
                anchor.read(&key()).unwrap(),
                Some(at(highest)),
                "round {round}"
            );
        }
    }
}
