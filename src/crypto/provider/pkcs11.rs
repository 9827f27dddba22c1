//! The `pkcs11` key provider: the master key is an AES-256 secret key object in a PKCS#11
//! token (an HSM, a smart card, SoftHSM2), found by its label and never extracted.
//!
//! It writes the same sealed blob (version 1, docs/FORMATS.md "Sealed blob") as the `raw`
//! provider, but the AES-GCM operation runs inside the token: a fresh random 12-byte nonce
//! from the operating system, the header `1 | kek_id | nonce`, AAD = [`BlobContext::aad`] of
//! that header, then `C_Encrypt`/`C_Decrypt` with `CKM_AES_GCM` and a 128-bit tag (the token
//! returns and takes `ciphertext | tag`, exactly the blob's body). A store sealed by a raw key
//! opens with a token holding the same key bytes, and back.
//!
//! PKCS#11 sessions are not thread-safe: the provider keeps a small pool of sessions, one per
//! concurrent call, on a token it logged in to once (the login state of a token is shared by
//! all sessions of the process). The module is loaded and `C_Initialize`d once per process and
//! path, and never finalized (another provider of the process may still use it).
//!
//! Errors: every "cannot reach / refused" is KEY_UNAVAILABLE with a message naming the
//! module, token or key label (never the PIN); a blob that fails GCM authentication is
//! INTEGRITY (WRONG_MASTER_KEY at open, through the key check value).

mod config;

pub use config::{PinSource, Pkcs11Config, TokenSelector};

use super::KeyProvider;
use crate::crypto::blob::{self, BlobContext, BLOB_VERSION, HEADER_LEN, TAG_LEN};
use crate::error::{Error, ErrorCode, Result};
use aes_gcm::aead::{rand_core::RngCore, OsRng};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use parking_lot::Mutex;
use std::fmt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Length in bytes of the AES key the token must hold.
const KEY_BYTES: u64 = 32;
/// Length of the GCM nonce (the IV given to `CKM_AES_GCM`).
const NONCE_LEN: usize = 12;
/// How many idle sessions the pool keeps open (more may be open while calls overlap).
const MAX_IDLE_SESSIONS: usize = 4;

/// The master key in a PKCS#11 token (see the module documentation).
pub struct Pkcs11Provider {
    description: String,
    ctx: Pkcs11,
    slot: Slot,
    key: ObjectHandle,
    pin: AuthPin,
    /// Idle sessions, each logged in (through the token's shared login state).
    idle: Mutex<Vec<Session>>,
}

impl fmt::Debug for Pkcs11Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the PIN.
        f.debug_struct("Pkcs11Provider")
            .field("provider", &self.description)
            .finish_non_exhaustive()
    }
}

impl Pkcs11Provider {
    /// Opens the provider from the options of a `pkcs11:` spec (the part after the colon),
    /// e.g. `module=/usr/lib/softhsm/libsofthsm2.so,token=tb,key=master,pin-file=/etc/tb/pin`.
    /// INVALID_ARGUMENT for a malformed spec or an unreadable PIN file; KEY_UNAVAILABLE when
    /// the module, token or key cannot be used.
    pub fn from_spec_options(options: &str) -> Result<Pkcs11Provider> {
        Pkcs11Provider::open(&Pkcs11Config::parse(options)?)
    }

    /// Loads the module, finds the token, logs in with the user PIN and finds the key.
    pub fn open(config: &Pkcs11Config) -> Result<Pkcs11Provider> {
        let pin = config.pin.read()?;
        let ctx = module(&config.module)?;
        let slot = find_slot(&ctx, config)?;
        let session = open_session(&ctx, slot, config, false)?;
        login(&session, &pin, config)?;
        let key = find_key(&session, config)?;
        Ok(Pkcs11Provider {
            description: config.describe(),
            ctx,
            slot,
            key,
            pin,
            idle: Mutex::new(vec![session]),
        })
    }

    /// Creates the AES-256 master key in the token (`C_GenerateKey`): a token object labelled
    /// `config.key_label`, sensitive, not extractable, for encrypt and decrypt only. Refuses
    /// (INVALID_ARGUMENT) when a key with that label already exists.
    pub fn generate_key(config: &Pkcs11Config) -> Result<()> {
        let pin = config.pin.read()?;
        let ctx = module(&config.module)?;
        let slot = find_slot(&ctx, config)?;
        let session = open_session(&ctx, slot, config, true)?;
        login(&session, &pin, config)?;
        let found = session
            .find_objects(&key_template(&config.key_label))
            .map_err(|e| unavailable(config, "cannot search the token for the key", &e))?;
        if !found.is_empty() {
            return Err(Error::invalid(format!(
                "token '{}' already has an AES key labelled '{}'",
                config.token_name(),
                config.key_label
            )));
        }
        let template = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::ValueLen(KEY_BYTES.into()),
            Attribute::Label(config.key_label.as_bytes().to_vec()),
        ];
        session
            .generate_key(&Mechanism::AesKeyGen, &template)
            .map_err(|e| unavailable(config, "cannot generate the key (C_GenerateKey)", &e))?;
        Ok(())
    }

    /// Runs `op` on an idle session (or a new one), then returns the session to the pool. A
    /// session that failed with a session-level error is dropped instead; a token that
    /// logged this process out is logged in again once.
    fn with_session<T>(
        &self,
        decrypting: bool,
        op: impl Fn(&Session) -> cryptoki::error::Result<T>,
    ) -> Result<T> {
        let session = match self.idle.lock().pop() {
            Some(session) => session,
            None => self
                .ctx
                .open_ro_session(self.slot)
                .map_err(|e| self.error("cannot open a session", &e))?,
        };
        let mut result = op(&session);
        if let Err(CkError::Pkcs11(RvError::UserNotLoggedIn, _)) = result {
            if let Err(e) = session.login(UserType::User, Some(&self.pin)) {
                if !matches!(e, CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) {
                    return Err(self.error("cannot log in again", &e));
                }
            }
            result = op(&session);
        }
        let keep = !matches!(
            result,
            Err(CkError::Pkcs11(
                RvError::SessionHandleInvalid
                    | RvError::SessionClosed
                    | RvError::DeviceRemoved
                    | RvError::TokenNotPresent,
                _
            ))
        );
        if keep {
            let mut idle = self.idle.lock();
            if idle.len() < MAX_IDLE_SESSIONS {
                idle.push(session);
            }
        }
        result.map_err(|e| self.call_error(&e, decrypting))
    }

    fn error(&self, what: &str, e: &CkError) -> Error {
        Error::new(
            ErrorCode::KeyUnavailable,
            format!("{}: {what}: {}", self.description, ck_reason(e)),
        )
    }

    /// The error of an encrypt or decrypt call. A decryption the token rejects as invalid
    /// ciphertext (SoftHSM2 reports a failed GCM tag as CKR_ENCRYPTED_DATA_INVALID or
    /// CKR_GENERAL_ERROR) is INTEGRITY, like a raw key's.
    fn call_error(&self, e: &CkError, decrypting: bool) -> Error {
        match e {
            CkError::Pkcs11(RvError::KeyFunctionNotPermitted, _) => Error::new(
                ErrorCode::KeyUnavailable,
                format!(
                    "{}: the token key cannot wrap (CKA_ENCRYPT/CKA_DECRYPT not set)",
                    self.description
                ),
            ),
            CkError::Pkcs11(
                RvError::EncryptedDataInvalid
                | RvError::EncryptedDataLenRange
                | RvError::GeneralError
                | RvError::FunctionFailed,
                _,
            ) if decrypting => {
                Error::integrity("stored data failed authentication (corrupt or tampered)")
            }
            _ => self.error("the token refused the operation", e),
        }
    }
}

impl KeyProvider for Pkcs11Provider {
    fn describe(&self) -> String {
        self.description.clone()
    }

    fn seal(&self, kek_id: u32, context: &BlobContext<'_>, plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut header = [0u8; HEADER_LEN];
        header[0] = BLOB_VERSION;
        header[1..5].copy_from_slice(&kek_id.to_be_bytes());
        OsRng.fill_bytes(&mut header[5..]);
        let aad = context.aad(&header);
        let body = self.with_session(false, |session| {
            let mut iv = [0u8; NONCE_LEN];
            iv.copy_from_slice(&header[5..]);
            let params = GcmParams::new(&mut iv, &aad, (TAG_LEN as u64 * 8).into())?;
            session.encrypt(&Mechanism::AesGcm(params), self.key, plaintext)
        })?;
        if body.len() != plaintext.len() + TAG_LEN {
            return Err(Error::new(
                ErrorCode::KeyUnavailable,
                format!(
                    "{}: the token returned {} bytes for AES-GCM of {} bytes",
                    self.description,
                    body.len(),
                    plaintext.len()
                ),
            ));
        }
        let mut out = Vec::with_capacity(HEADER_LEN + body.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(&body);
        Ok(out)
    }

    fn open(&self, context: &BlobContext<'_>, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        blob::blob_key_id(sealed)?;
        let header = &sealed[..HEADER_LEN];
        let aad = context.aad(header);
        self.with_session(true, |session| {
            let mut iv = [0u8; NONCE_LEN];
            iv.copy_from_slice(&header[5..]);
            let params = GcmParams::new(&mut iv, &aad, (TAG_LEN as u64 * 8).into())?;
            session
                .decrypt(&Mechanism::AesGcm(params), self.key, &sealed[HEADER_LEN..])
                .map(Zeroizing::new)
        })
    }
}

/// The process-wide context of the module at `path`: loaded and initialized on first use,
/// then shared (PKCS#11 allows one `C_Initialize` per process) and never finalized.
fn module(path: &Path) -> Result<Pkcs11> {
    static MODULES: Mutex<Vec<(PathBuf, Pkcs11)>> = Mutex::new(Vec::new());
    let mut modules = MODULES.lock();
    if let Some((_, ctx)) = modules.iter().find(|(p, _)| p == path) {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(path).map_err(|e| {
        Error::new(
            ErrorCode::KeyUnavailable,
            format!(
                "cannot load the PKCS#11 module {}: {}",
                path.display(),
                ck_reason(&e)
            ),
        )
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        // Initialized by someone else in this process (e.g. the host application).
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            return Err(Error::new(
                ErrorCode::KeyUnavailable,
                format!(
                    "cannot initialize the PKCS#11 module {}: {}",
                    path.display(),
                    ck_reason(&e)
                ),
            ))
        }
    }
    modules.push((path.to_path_buf(), ctx.clone()));
    Ok(ctx)
}

fn find_slot(ctx: &Pkcs11, config: &Pkcs11Config) -> Result<Slot> {
    let slots = ctx
        .get_slots_with_initialized_token()
        .map_err(|e| unavailable(config, "cannot list the module's slots", &e))?;
    match &config.token {
        TokenSelector::Slot(id) => slots.into_iter().find(|s| s.id() == *id),
        TokenSelector::Label(label) => slots.into_iter().find(|slot| {
            ctx.get_token_info(*slot)
                .is_ok_and(|info| info.label().trim_end() == label)
        }),
    }
    .ok_or_else(|| {
        Error::new(
            ErrorCode::KeyUnavailable,
            format!(
                "PKCS#11 module {} has no initialized token {}",
                config.module.display(),
                config.token_name()
            ),
        )
    })
}

fn open_session(ctx: &Pkcs11, slot: Slot, config: &Pkcs11Config, rw: bool) -> Result<Session> {
    let session = if rw {
        ctx.open_rw_session(slot)
    } else {
        ctx.open_ro_session(slot)
    };
    session.map_err(|e| unavailable(config, "cannot open a session", &e))
}

/// Logs in as the user. Already logged in (another provider of this process on the same
/// token) is success: PKCS#11 login state belongs to the process, not the session.
fn login(session: &Session, pin: &AuthPin, config: &Pkcs11Config) -> Result<()> {
    match session.login(UserType::User, Some(pin)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(CkError::Pkcs11(RvError::PinIncorrect | RvError::PinLenRange, _)) => Err(Error::new(
            ErrorCode::KeyUnavailable,
            format!(
                "{}: wrong user PIN for token {} (CKR_PIN_INCORRECT)",
                config.describe(),
                config.token_name()
            ),
        )),
        Err(CkError::Pkcs11(RvError::PinLocked, _)) => Err(Error::new(
            ErrorCode::KeyUnavailable,
            format!(
                "{}: the user PIN of token {} is locked",
                config.describe(),
                config.token_name()
            ),
        )),
        Err(e) => Err(unavailable(config, "cannot log in", &e)),
    }
}

/// The search template of the master key: an AES secret key with this label.
fn key_template(label: &str) -> [Attribute; 3] {
    [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Label(label.as_bytes().to_vec()),
    ]
}

fn find_key(session: &Session, config: &Pkcs11Config) -> Result<ObjectHandle> {
    let found = session
        .find_objects(&key_template(&config.key_label))
        .map_err(|e| unavailable(config, "cannot search the token for the key", &e))?;
    let key = match found.as_slice() {
        [key] => *key,
        [] => {
            return Err(Error::new(
                ErrorCode::KeyUnavailable,
                format!(
                    "{}: token {} has no AES secret key labelled '{}' (create one with `tbsecrets pkcs11-keygen`)",
                    config.describe(),
                    config.token_name(),
                    config.key_label
                ),
            ))
        }
        _ => {
            return Err(Error::new(
                ErrorCode::KeyUnavailable,
                format!(
                    "{}: token {} has {} AES keys labelled '{}'; labels must be unique",
                    config.describe(),
                    config.token_name(),
                    found.len(),
                    config.key_label
                ),
            ))
        }
    };
    let attributes = session
        .get_attributes(
            key,
            &[
                AttributeType::Encrypt,
                AttributeType::Decrypt,
                AttributeType::ValueLen,
            ],
        )
        .map_err(|e| unavailable(config, "cannot read the key's attributes", &e))?;
    let (mut encrypt, mut decrypt, mut len) = (false, false, None);
    for attribute in attributes {
        match attribute {
            Attribute::Encrypt(v) => encrypt = v,
            Attribute::Decrypt(v) => decrypt = v,
            Attribute::ValueLen(v) => len = Some(u64::from(v)),
            _ => {}
        }
    }
    if !(encrypt && decrypt) {
        return Err(Error::new(
            ErrorCode::KeyUnavailable,
            format!(
                "{}: key '{}' cannot wrap: it must allow encrypt and decrypt (CKA_ENCRYPT={encrypt}, CKA_DECRYPT={decrypt})",
                config.describe(),
                config.key_label
            ),
        ));
    }
    if len.is_some_and(|len| len != KEY_BYTES) {
        return Err(Error::new(
            ErrorCode::KeyUnavailable,
            format!(
                "{}: key '{}' is not an AES-256 key ({} bytes)",
                config.describe(),
                config.key_label,
                len.unwrap_or_default()
            ),
        ));
    }
    Ok(key)
}

fn unavailable(config: &Pkcs11Config, what: &str, e: &CkError) -> Error {
    Error::new(
        ErrorCode::KeyUnavailable,
        format!("{}: {what}: {}", config.describe(), ck_reason(e)),
    )
}

/// A short reason for a PKCS#11 error: the function and the return value's name.
fn ck_reason(e: &CkError) -> String {
    match e {
        CkError::Pkcs11(rv, function) => format!("{function} returned {rv:?}"),
        CkError::LibraryLoading(e) => e.to_string(),
        other => other.to_string(),
    }
}
