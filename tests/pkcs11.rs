//! The `pkcs11` key provider on a SoftHSM2 token: the store suite through the token, the
//! typed errors of a token that cannot be used, rotation to and from a raw key (and its
//! resumption after a failure), and the core-dump test (docs/KEY-CUSTODY.md): a child process
//! using the token, read whole, holds no copy of the token key's bytes, while the same search
//! finds a raw key.

#[path = "common/softhsm.rs"]
mod softhsm;

use softhsm::{
    create_key, process_lock, softhsm, KEY, KEY2, NO_ENCRYPT_KEY, PIN_TOKEN, PROC_TOKEN, TOKEN,
};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tbsecrets::{
    BlobContext, Error, ErrorCode, KeyProvider, MasterKey, Pkcs11Provider, Result, SecretStorage,
    SecretType, StorageOptions,
};
use zeroize::Zeroizing;

fn with_provider(provider: impl KeyProvider + 'static) -> StorageOptions {
    StorageOptions::with_key_provider(Arc::new(provider))
}

/// A fresh random 32-byte value and a unique label for a token key made from it.
fn known_key(prefix: &str) -> ([u8; 32], String) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let mut bytes = [0u8; 32];
    let key = MasterKey::generate();
    let b64 = key.to_base64();
    let decoded = base64_decode(&b64);
    bytes.copy_from_slice(&decoded);
    let label = format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    (bytes, label)
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .expect("base64")
}

#[test]
fn a_store_lives_in_the_token_and_reopens() {
    let hsm = softhsm();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = SecretStorage::open(&path, with_provider(hsm.provider(KEY))).unwrap();
    store
        .create("t", "MyApiKey", SecretType::Text, b"s3cr3t", "")
        .unwrap();
    store
        .create("u", "cert", SecretType::TextFile, &[0xA5; 4096], "")
        .unwrap();
    assert_eq!(store.get("t", "MyApiKey").unwrap().as_bytes(), b"s3cr3t");
    store.forget_keys();
    assert_eq!(
        store.get("u", "cert").unwrap().as_bytes(),
        &[0xA5; 4096][..]
    );
    store.close().unwrap();

    // Reopened through the spec string every surface takes (`--key-provider`, C, Java, Python).
    let by_spec =
        tbsecrets::key_provider_from_spec(&format!("pkcs11:{}", hsm.spec(TOKEN, KEY))).unwrap();
    assert!(
        by_spec.describe().starts_with("pkcs11:"),
        "{}",
        by_spec.describe()
    );
    let again = SecretStorage::open(&path, StorageOptions::with_key_provider(by_spec)).unwrap();
    assert_eq!(again.get("t", "MyApiKey").unwrap().as_bytes(), b"s3cr3t");
    assert_eq!(
        again.info("t", "MyApiKey").unwrap().secret_type,
        SecretType::Text
    );
    again.close().unwrap();

    // Another token key, or a raw key, does not open it.
    let err = SecretStorage::open(&path, with_provider(hsm.provider(KEY2))).unwrap_err();
    assert_eq!(err.code(), ErrorCode::WrongMasterKey, "{err}");
    let err = SecretStorage::open(
        &path,
        StorageOptions::with_master_key(MasterKey::generate()),
    )
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::WrongMasterKey, "{err}");
}

#[test]
fn the_token_writes_the_raw_providers_sealed_blobs() {
    // A token key made from known bytes and a raw key of the same bytes open each other's
    // stores: the token computes exactly sealed blob v1.
    let hsm = softhsm();
    let (bytes, label) = known_key("same");
    create_key(hsm, TOKEN, &label, &bytes, true);
    let raw = MasterKey::from_bytes(&bytes).unwrap();
    let token = hsm.provider(&label);

    let context = BlobContext::DataKey {
        tenant: "t",
        dek_id: 3,
    };
    let sealed = token.seal(9, &context, b"0123456789abcdef").unwrap();
    assert_eq!(sealed[0], 1, "sealed blob version 1");
    assert_eq!(&sealed[1..5], &9u32.to_be_bytes());
    assert_eq!(sealed.len(), 1 + 4 + 12 + 16 + 16);
    assert_eq!(
        raw.open(&context, &sealed).unwrap().as_slice(),
        b"0123456789abcdef"
    );
    let by_raw = raw.seal(9, &context, b"from raw").unwrap();
    assert_eq!(
        token.open(&context, &by_raw).unwrap().as_slice(),
        b"from raw"
    );
    assert_ne!(
        token.seal(9, &context, b"x").unwrap(),
        token.seal(9, &context, b"x").unwrap(),
        "a fresh nonce per seal"
    );

    // Authentication: another context, or any flipped byte, is INTEGRITY.
    let other = BlobContext::DataKey {
        tenant: "u",
        dek_id: 3,
    };
    assert_eq!(
        token.open(&other, &sealed).unwrap_err().code(),
        ErrorCode::Integrity
    );
    for i in [1, 5, 17, sealed.len() - 1] {
        let mut bad = sealed.clone();
        bad[i] ^= 0x40;
        let err = token.open(&context, &bad).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Integrity, "byte {i}: {err}");
    }

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = SecretStorage::open(&path, with_provider(token)).unwrap();
    store.create("t", "a", SecretType::Text, b"v", "").unwrap();
    store.close().unwrap();
    let store = SecretStorage::open(&path, StorageOptions::with_master_key(raw)).unwrap();
    assert_eq!(store.get("t", "a").unwrap().as_bytes(), b"v");
}

#[test]
fn a_token_is_found_by_slot_too() {
    let hsm = softhsm();
    let slot = softhsm::slot_of(hsm, TOKEN);
    let spec = format!(
        "module={},slot={slot},key={KEY},pin-file={}",
        hsm.module.display(),
        hsm.pin_file.display()
    );
    let by_slot = Pkcs11Provider::from_spec_options(&spec).unwrap();
    assert_eq!(by_slot.describe(), format!("pkcs11:slot={slot},key={KEY}"));
    // The same key as by label: each opens what the other sealed.
    let sealed = by_slot.seal(1, &BlobContext::KeyCheck, b"check").unwrap();
    let by_label = hsm.provider(KEY);
    assert_eq!(
        by_label
            .open(&BlobContext::KeyCheck, &sealed)
            .unwrap()
            .as_slice(),
        b"check"
    );
    let wrong = format!(
        "module={},slot={},key={KEY},pin-file={}",
        hsm.module.display(),
        slot.wrapping_add(1_000_003),
        hsm.pin_file.display()
    );
    assert!(unavailable(&wrong)
        .message()
        .contains("no initialized token in slot"));
}

fn unavailable(spec: &str) -> Error {
    let err = Pkcs11Provider::from_spec_options(spec).unwrap_err();
    assert_eq!(err.code(), ErrorCode::KeyUnavailable, "{spec}: {err}");
    err
}

#[test]
fn a_token_that_cannot_be_used_is_key_unavailable() {
    let hsm = softhsm();
    let spec = |module: &str, token: &str, key: &str, pin: &Path| {
        format!(
            "module={module},token={token},key={key},pin-file={}",
            pin.display()
        )
    };
    let module = hsm.module.to_str().unwrap();

    let err = unavailable(&spec(module, PIN_TOKEN, KEY, &hsm.wrong_pin_file));
    assert!(err.message().contains("wrong user PIN"), "{err}");
    assert!(!err.message().contains("0000"), "the PIN is never shown");

    let err = unavailable(&spec(module, "no-such-token", KEY, &hsm.pin_file));
    assert!(
        err.message()
            .contains("no initialized token 'no-such-token'"),
        "{err}"
    );

    let err = unavailable(&spec(module, TOKEN, "no-such-key", &hsm.pin_file));
    assert!(
        err.message()
            .contains("no AES secret key labelled 'no-such-key'"),
        "{err}"
    );

    let err = unavailable(&spec(module, TOKEN, NO_ENCRYPT_KEY, &hsm.pin_file));
    assert!(err.message().contains("cannot wrap"), "{err}");

    let missing = hsm.dir.join("no-such-module.so");
    let err = unavailable(&spec(missing.to_str().unwrap(), TOKEN, KEY, &hsm.pin_file));
    assert!(
        err.message().contains("cannot load the PKCS#11 module"),
        "{err}"
    );

    // A PIN file others may read is refused before the token is touched.
    let loose = hsm.dir.join("loose-pin");
    std::fs::write(&loose, "1234\n").unwrap();
    let err = Pkcs11Provider::from_spec_options(&spec(module, TOKEN, KEY, &loose)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument, "{err}");

    // Debug and describe name the token and key, never the PIN.
    let provider = hsm.provider(KEY);
    assert_eq!(
        provider.describe(),
        format!("pkcs11:token={TOKEN},key={KEY}")
    );
    let debug = format!("{provider:?}");
    assert!(
        debug.contains("pkcs11:token=tbs") && !debug.contains(softhsm::PIN),
        "{debug}"
    );
}

#[test]
fn a_raw_store_moves_into_the_token_and_back() {
    let hsm = softhsm();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let raw = MasterKey::generate();
    let store = SecretStorage::open(&path, StorageOptions::with_master_key(raw.clone())).unwrap();
    for tenant in ["a", "b", "c"] {
        store
            .create(tenant, "s", SecretType::Text, tenant.as_bytes(), "")
            .unwrap();
    }
    let report = store
        .rotate_key_provider(Arc::new(hsm.provider(KEY)), &mut |_, _| {})
        .unwrap();
    assert_eq!(report.keys, 3);
    assert_eq!(store.get("b", "s").unwrap().as_bytes(), b"b");
    store.close().unwrap();

    let err = SecretStorage::open(&path, StorageOptions::with_master_key(raw)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::WrongMasterKey);
    let store = SecretStorage::open(&path, with_provider(hsm.provider(KEY))).unwrap();
    assert_eq!(store.get("c", "s").unwrap().as_bytes(), b"c");
    // Token key to token key, then back to a new raw key.
    store
        .rotate_key_provider(Arc::new(hsm.provider(KEY2)), &mut |_, _| {})
        .unwrap();
    let back = MasterKey::generate();
    store
        .rotate_key_provider(Arc::new(back.clone()), &mut |_, _| {})
        .unwrap();
    store.close().unwrap();
    let store = SecretStorage::open(&path, StorageOptions::with_master_key(back)).unwrap();
    assert_eq!(store.get("a", "s").unwrap().as_bytes(), b"a");
    assert!(store.verify_audit_log(None).unwrap().is_intact());
}

#[cfg(feature = "cli")]
#[test]
fn pkcs11_keygen_creates_a_key_once() {
    let hsm = softhsm();
    let _only = process_lock();
    let (_, label) = known_key("cli");
    let keygen = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tbsecrets"))
            .arg("pkcs11-keygen")
            .arg("--module")
            .arg(&hsm.module)
            .args(["--token", PROC_TOKEN, "--key-label", &label, "--pin-file"])
            .arg(&hsm.pin_file)
            .args(extra)
            .output()
            .expect("run tbsecrets")
    };
    let out = keygen(&["--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["key_label"], label.as_str());
    assert_eq!(created["token"], PROC_TOKEN);
    let spec = created["key_provider"].as_str().unwrap();
    assert!(
        spec.contains(&format!("token={PROC_TOKEN},key={label}")),
        "{spec}"
    );

    // A second run (a new process, which loads the token afresh) finds the key.
    let again = keygen(&[]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(
        again.status.code(),
        Some(ErrorCode::InvalidArgument.as_i32()),
        "{stderr}"
    );
    assert!(stderr.contains("already has an AES key"), "{stderr}");
}

/// The token provider, failing every seal after the first `seals` (a token that goes away
/// mid-rotation).
#[derive(Debug)]
struct FailsAfter {
    inner: Pkcs11Provider,
    seals: usize,
    done: AtomicUsize,
}

impl KeyProvider for FailsAfter {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn seal(&self, kek_id: u32, context: &BlobContext<'_>, plaintext: &[u8]) -> Result<Vec<u8>> {
        if self.done.fetch_add(1, Ordering::SeqCst) >= self.seals {
            return Err(Error::new(ErrorCode::KeyUnavailable, "the token went away"));
        }
        self.inner.seal(kek_id, context, plaintext)
    }

    fn open(&self, context: &BlobContext<'_>, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.inner.open(context, blob)
    }
}

#[test]
fn a_failed_rotation_into_the_token_changes_nothing_and_a_rerun_finishes() {
    let hsm = softhsm();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let raw = MasterKey::generate();
    let store = SecretStorage::open(&path, StorageOptions::with_master_key(raw.clone())).unwrap();
    for i in 0..5 {
        let tenant = format!("t{i}");
        store
            .create(&tenant, "s", SecretType::Text, tenant.as_bytes(), "")
            .unwrap();
    }
    let failing = FailsAfter {
        inner: hsm.provider(KEY),
        seals: 2,
        done: AtomicUsize::new(0),
    };
    let err = store
        .rotate_key_provider(Arc::new(failing), &mut |_, _| {})
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::KeyUnavailable, "{err}");
    store.forget_keys();
    assert_eq!(store.get("t4", "s").unwrap().as_bytes(), b"t4");
    store.close().unwrap();

    // Still the raw key's store; the rerun moves every key.
    let store = SecretStorage::open(&path, StorageOptions::with_master_key(raw)).unwrap();
    let report = store
        .rotate_key_provider(Arc::new(hsm.provider(KEY)), &mut |_, _| {})
        .unwrap();
    assert_eq!(report.keys, 5);
    store.close().unwrap();
    let store = SecretStorage::open(&path, with_provider(hsm.provider(KEY))).unwrap();
    for i in 0..5 {
        let tenant = format!("t{i}");
        assert_eq!(
            store.get(&tenant, "s").unwrap().as_bytes(),
            tenant.as_bytes()
        );
    }
}

#[test]
fn concurrent_cold_gets_share_the_session_pool() {
    let hsm = softhsm();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = SecretStorage::open(&path, with_provider(hsm.provider(KEY))).unwrap();
    for i in 0..8 {
        let tenant = format!("t{i}");
        store
            .create(&tenant, "s", SecretType::Text, tenant.as_bytes(), "")
            .unwrap();
    }
    std::thread::scope(|scope| {
        for i in 0..8 {
            let store = &store;
            scope.spawn(move || {
                let tenant = format!("t{i}");
                for _ in 0..20 {
                    store.forget_keys();
                    assert_eq!(
                        store.get(&tenant, "s").unwrap().as_bytes(),
                        tenant.as_bytes()
                    );
                }
            });
        }
    });
}

// ---------------------------------------------------------------------------------------------
// The core-dump test: the whole memory of a process that used the key, searched for its bytes.

/// Set in the child: `pkcs11:LABEL` or `raw:BASE64`, the provider the child opens the store
/// with.
const ROLE_ENV: &str = "TBS_TEST_DUMP_ROLE";
const STORE_ENV: &str = "TBS_TEST_DUMP_STORE";

/// The child: opens a store with its provider, writes, reads (cold and warm), rotates a data
/// key and the master key, prints READY and waits for its stdin to close.
fn dump_child(role: &str) {
    let path = std::env::var(STORE_ENV).expect("store path");
    let provider: Arc<dyn KeyProvider> = match role.split_once(':') {
        Some(("pkcs11", label)) => Arc::new(softhsm().provider_in(PROC_TOKEN, label)),
        Some(("raw", b64)) => Arc::new(MasterKey::from_base64(b64).expect("raw key")),
        _ => panic!("unknown role {role}"),
    };
    let store = SecretStorage::open(&path, StorageOptions::with_key_provider(provider.clone()))
        .expect("open");
    for tenant in ["a", "b"] {
        store
            .create(tenant, "s", SecretType::Text, b"value", "")
            .expect("create");
    }
    for _ in 0..3 {
        store.forget_keys();
        assert_eq!(store.get("a", "s").unwrap().as_bytes(), b"value");
        assert_eq!(store.get("b", "s").unwrap().as_bytes(), b"value");
    }
    store.rotate_tenant_key("a").expect("rotate a data key");
    // A master-key rotation onto the same provider: every data key unwrapped and rewrapped.
    store
        .rotate_key_provider(provider, &mut |_, _| {})
        .expect("rotate the master key");
    store.forget_keys();
    assert_eq!(store.get("a", "s").unwrap().as_bytes(), b"value");
    // Straight to fd 1: the test harness captures `println!` in a test's thread.
    let ready = b"READY\n";
    // SAFETY: a write of a valid buffer to the process's standard output.
    let written = unsafe { libc::write(1, ready.as_ptr().cast(), ready.len()) };
    assert_eq!(written, ready.len() as isize);
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
    drop(store);
}

/// Runs the child with `role`, reads its whole memory (every readable mapping, through
/// /proc/PID/mem) while it is READY, and returns how many times `needle` occurs in it.
fn occurrences_in_child(role: &str, needle: &[u8]) -> usize {
    let hsm = softhsm();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "core_dump_search_finds_a_raw_key_but_not_the_token_key",
            "--exact",
        ])
        .args(["--nocapture", "--test-threads=1"])
        .env(ROLE_ENV, role)
        .env(STORE_ENV, dir.path().join("s.db"))
        .env(softhsm::CHILD_DIR_ENV, &hsm.dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the child");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        match lines.next() {
            // The harness may have printed "test NAME ... " on the same line.
            Some(Ok(line)) if line.trim_end().ends_with("READY") => break,
            Some(Ok(_)) => continue,
            _ => panic!("the child ended before READY: {:?}", child.wait()),
        }
    }
    let pid = child.id();
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("read maps");
    if role.starts_with("pkcs11:") {
        assert!(
            maps.contains("libsofthsm2"),
            "SoftHSM2 runs inside the searched process"
        );
    }
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem")).expect("open mem");
    let (mut found, mut read_bytes) = (0, 0usize);
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !perms.starts_with('r') || line.ends_with("[vvar]") || line.ends_with("[vsyscall]") {
            continue;
        }
        let (start, end) = range.split_once('-').unwrap();
        let start = u64::from_str_radix(start, 16).unwrap();
        let end = u64::from_str_radix(end, 16).unwrap();
        // In chunks that overlap by the needle's length, so a copy across two is found.
        const CHUNK: u64 = 1 << 20;
        let mut buf = vec![0u8; CHUNK as usize + needle.len()];
        let mut at = start;
        while at < end {
            let len = (end - at).min(CHUNK + needle.len() as u64) as usize;
            if mem.seek(SeekFrom::Start(at)).is_err() || mem.read_exact(&mut buf[..len]).is_err() {
                break;
            }
            read_bytes += len.min(CHUNK as usize);
            found += memchr::memmem::find_iter(&buf[..len], needle)
                .filter(|&i| (i as u64) < CHUNK)
                .count();
            at += CHUNK;
        }
    }
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success(), "the child failed");
    assert!(
        read_bytes > 1 << 20,
        "read only {read_bytes} bytes of the child"
    );
    eprintln!(
        "core-dump search ({}): {read_bytes} bytes read, {found} copies of the key",
        role.split(':').next().unwrap_or("")
    );
    found
}

#[test]
fn core_dump_search_finds_a_raw_key_but_not_the_token_key() {
    if let Ok(role) = std::env::var(ROLE_ENV) {
        dump_child(&role);
        return;
    }
    let _only = process_lock();
    // Control: a raw key of known bytes is in the process (the search works).
    let raw = MasterKey::generate();
    let raw_bytes = base64_decode(&raw.to_base64());
    let found = occurrences_in_child(&format!("raw:{}", raw.to_base64().as_str()), &raw_bytes);
    assert!(
        found > 0,
        "the search must find a raw key in the child's memory"
    );

    // The token key, made from known bytes: never found in the child.
    let (bytes, label) = known_key("dump");
    create_key(softhsm(), PROC_TOKEN, &label, &bytes, true);
    let found = occurrences_in_child(&format!("pkcs11:{label}"), &bytes);
    assert_eq!(found, 0, "the token key's bytes are in the child's memory");
}
