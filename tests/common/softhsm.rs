//! A SoftHSM2 token for the `pkcs11` key provider's tests (include it with
//! `#[path = "common/softhsm.rs"] mod softhsm;`).
//!
//! SoftHSM2 reads its configuration (`SOFTHSM2_CONF`) once, at `C_Initialize`, so a test
//! process has one token directory: [`softhsm`] makes it once, under the target directory,
//! with the tokens the tests use, before anything loads the module. A child process (the
//! core-dump test) is given the same directory through [`CHILD_DIR_ENV`] and reuses it.
//! The suite fails, never skips, when SoftHSM2 is not installed.
#![allow(dead_code)]

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::object::{Attribute, KeyType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use tbsecrets::{Pkcs11Config, Pkcs11Provider};

/// Where Debian's `softhsm2` package (and others) install the module.
const MODULE_PATHS: [&str; 3] = [
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
];
/// The token of most tests, and its user PIN.
pub const TOKEN: &str = "tbs";
pub const PIN: &str = "1234";
/// A token nobody logs in to, for the wrong-PIN test (login state is per process and token).
pub const PIN_TOKEN: &str = "tbs-pin";
/// The token that other processes (the CLI, the core-dump child) use, one at a time under
/// [`process_lock`]: SoftHSM2's file store does not reliably show one process the objects
/// another process is creating meanwhile.
pub const PROC_TOKEN: &str = "tbs-proc";
const SO_PIN: &str = "5678";
/// The AES-256 key `tbsecrets pkcs11-keygen`'s code made (`C_GenerateKey`).
pub const KEY: &str = "master";
/// A second generated key (rotation between two token keys).
pub const KEY2: &str = "master-2";
/// An AES-256 key with CKA_ENCRYPT false.
pub const NO_ENCRYPT_KEY: &str = "no-encrypt";
/// Set in a child process: the token directory of the parent's [`SoftHsm`].
pub const CHILD_DIR_ENV: &str = "TBS_TEST_SOFTHSM_DIR";

/// The test process's SoftHSM2 setup.
pub struct SoftHsm {
    /// The directory holding softhsm2.conf, tokens/ and the PIN files.
    pub dir: PathBuf,
    /// The module path.
    pub module: PathBuf,
    /// A mode-0600 file holding [`PIN`].
    pub pin_file: PathBuf,
    /// A mode-0600 file holding a wrong PIN.
    pub wrong_pin_file: PathBuf,
}

/// The SoftHSM2 module path; panics (the suite fails) when SoftHSM2 is not installed.
pub fn module_path() -> PathBuf {
    MODULE_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "SoftHSM2 is not installed (no libsofthsm2.so in {MODULE_PATHS:?}): the pkcs11 \
                 provider's tests need it; install it with `apt-get install -y softhsm2`"
            )
        })
}

/// The process's SoftHSM2 setup, made on first use.
pub fn softhsm() -> &'static SoftHsm {
    static SETUP: OnceLock<SoftHsm> = OnceLock::new();
    SETUP.get_or_init(|| {
        let module = module_path();
        if let Ok(dir) = std::env::var(CHILD_DIR_ENV) {
            return layout(PathBuf::from(dir), module);
        }
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("softhsm");
        // The directories of earlier test processes that are gone.
        for entry in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            let name = entry.file_name();
            if !Path::new("/proc").join(&name).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let dir = root.join(std::process::id().to_string());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("tokens")).expect("create the token directory");
        let hsm = layout(dir, module);
        write_private(&hsm.pin_file, PIN);
        write_private(&hsm.wrong_pin_file, "0000");
        for label in [TOKEN, PIN_TOKEN, PROC_TOKEN] {
            let out = Command::new("softhsm2-util")
                .args(["--init-token", "--free", "--label", label])
                .args(["--pin", PIN, "--so-pin", SO_PIN])
                .env("SOFTHSM2_CONF", hsm.dir.join("softhsm2.conf"))
                .output()
                .expect("run softhsm2-util (install it with `apt-get install -y softhsm2`)");
            assert!(
                out.status.success(),
                "softhsm2-util --init-token: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // The tbsecrets code path an operator uses (`tbsecrets pkcs11-keygen`).
        for label in [KEY, KEY2] {
            Pkcs11Provider::generate_key(&hsm.config(TOKEN, label)).expect("generate the key");
        }
        create_key(&hsm, TOKEN, NO_ENCRYPT_KEY, &[7u8; 32], false);
        hsm
    })
}

fn layout(dir: PathBuf, module: PathBuf) -> SoftHsm {
    let conf = dir.join("softhsm2.conf");
    if !conf.exists() {
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.join("tokens").display()
            ),
        )
        .expect("write softhsm2.conf");
    }
    // Before any C_Initialize of this process (this runs inside the OnceLock, first).
    std::env::set_var("SOFTHSM2_CONF", &conf);
    SoftHsm {
        pin_file: dir.join("pin"),
        wrong_pin_file: dir.join("wrong-pin"),
        dir,
        module,
    }
}

fn write_private(path: &Path, text: &str) {
    std::fs::write(path, format!("{text}\n")).expect("write a PIN file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod 600");
}

impl SoftHsm {
    /// The `pkcs11:` spec options for a key of a token, with the right PIN.
    pub fn spec(&self, token: &str, key: &str) -> String {
        format!(
            "module={},token={token},key={key},pin-file={}",
            self.module.display(),
            self.pin_file.display()
        )
    }

    /// The parsed configuration of [`SoftHsm::spec`].
    pub fn config(&self, token: &str, key: &str) -> Pkcs11Config {
        Pkcs11Config::parse(&self.spec(token, key)).expect("a valid spec")
    }

    /// The provider for a key of [`TOKEN`].
    pub fn provider(&self, key: &str) -> Pkcs11Provider {
        self.provider_in(TOKEN, key)
    }

    /// The provider for a key of `token`.
    pub fn provider_in(&self, token: &str, key: &str) -> Pkcs11Provider {
        Pkcs11Provider::from_spec_options(&self.spec(token, key))
            .unwrap_or_else(|e| panic!("open the pkcs11 provider: {e}"))
    }
}

/// The slot id of the token labelled `token`.
pub fn slot_of(hsm: &SoftHsm, token: &str) -> u64 {
    let ctx = Pkcs11::new(&hsm.module).expect("load SoftHSM2");
    ctx.get_slots_with_initialized_token()
        .expect("slots")
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label() == token)
        .expect("the token")
        .id()
}

/// Serializes the tests that let another process use [`PROC_TOKEN`].
pub fn process_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Creates (`C_CreateObject`) an AES-256 key in `token` from known bytes: sensitive, not
/// extractable, decrypting, and encrypting when `encrypt`.
pub fn create_key(hsm: &SoftHsm, token: &str, label: &str, value: &[u8; 32], encrypt: bool) {
    let ctx = Pkcs11::new(&hsm.module).expect("load SoftHSM2");
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(())
        | Err(cryptoki::error::Error::Pkcs11(
            cryptoki::error::RvError::CryptokiAlreadyInitialized,
            _,
        )) => {}
        Err(e) => panic!("C_Initialize: {e}"),
    }
    let slot = ctx
        .get_slots_with_initialized_token()
        .expect("slots")
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label() == token)
        .expect("the test token");
    let session = ctx.open_rw_session(slot).expect("open a session");
    match session.login(UserType::User, Some(&AuthPin::from(PIN))) {
        Ok(())
        | Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::UserAlreadyLoggedIn, _)) => {
        }
        Err(e) => panic!("C_Login: {e}"),
    }
    session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Encrypt(encrypt),
            Attribute::Decrypt(true),
            Attribute::Value(value.to_vec()),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .expect("C_CreateObject");
}
