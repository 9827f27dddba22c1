//! No plaintext in released memory: a checking global allocator scans every block this
//! process frees (including the old block of every reallocation) for marker secrets, and the
//! test drives the C ABI and the Rust API through every path that handles a value or a key.
//!
//! Markers: a TEXT value, a TEXT_FILE value (PEM-like, with characters JSON must escape), the
//! master key's raw bytes and its base64 text, and the tenant data key (recovered from the
//! store file with the master key). A hit means some buffer held a secret and was freed
//! without being wiped: `tbs_buffer_free`, `SecretValue`, `MasterKey`, `DataKey` (dropped
//! with the store), and the resolve path's `Zeroizing` buffers must all wipe first.
//!
//! This file holds a single test so that nothing else runs while the allocator is armed.

use base64::Engine;
use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::CString;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::RwLock;
use tbsecrets::{MasterKey, SecretStorage, StorageOptions};
use zeroize::Zeroizing;

#[path = "common/c_abi.rs"]
mod c_abi;
use c_abi::*;

const MAX_PATTERNS: usize = 8;
const MAX_PATTERN_LEN: usize = 64;

/// The byte strings the allocator looks for in every freed block.
struct Patterns {
    bytes: [[u8; MAX_PATTERN_LEN]; MAX_PATTERNS],
    lens: [usize; MAX_PATTERNS],
    names: [&'static str; MAX_PATTERNS],
    count: usize,
}

static PATTERNS: RwLock<Patterns> = RwLock::new(Patterns {
    bytes: [[0; MAX_PATTERN_LEN]; MAX_PATTERNS],
    lens: [0; MAX_PATTERNS],
    names: [""; MAX_PATTERNS],
    count: 0,
});
static ARMED: AtomicBool = AtomicBool::new(false);
static HITS: [AtomicUsize; MAX_PATTERNS] = [const { AtomicUsize::new(0) }; MAX_PATTERNS];
static HIT_BLOCK_SIZE: [AtomicUsize; MAX_PATTERNS] = [const { AtomicUsize::new(0) }; MAX_PATTERNS];

/// The system allocator, plus a scan of each block before it is released. `realloc` is left
/// to the default (allocate, copy, `dealloc`), so a block abandoned by growth is scanned too.
struct Checking;

// SAFETY: every allocation is delegated to `System`; the scan only reads the block being
// freed, which is still allocated and `layout.size()` bytes long.
unsafe impl GlobalAlloc for Checking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ARMED.load(Ordering::Acquire) && layout.size() > 0 {
            // SAFETY: the block is live until the `System.dealloc` below.
            let block = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
            scan(block);
        }
        // SAFETY: forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Checking = Checking;

/// Records a hit for every pattern found in `block`. Allocates nothing.
fn scan(block: &[u8]) {
    let Ok(patterns) = PATTERNS.try_read() else {
        return;
    };
    for i in 0..patterns.count {
        let pattern = &patterns.bytes[i][..patterns.lens[i]];
        if contains(block, pattern) {
            HITS[i].fetch_add(1, Ordering::Relaxed);
            HIT_BLOCK_SIZE[i].store(block.len(), Ordering::Relaxed);
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return false;
    };
    let mut from = 0;
    while let Some(at) = memchr::memchr(first, &haystack[from..]) {
        let start = from + at;
        if haystack.len() - start < needle.len() {
            return false;
        }
        if &haystack[start + 1..start + needle.len()] == rest {
            return true;
        }
        from = start + 1;
    }
    false
}

/// Replaces the patterns (disarmed) and clears the counters.
fn set_patterns(list: &[(&'static str, &[u8])]) {
    ARMED.store(false, Ordering::Release);
    let mut patterns = PATTERNS.write().unwrap();
    assert!(list.len() <= MAX_PATTERNS);
    for (i, (name, bytes)) in list.iter().enumerate() {
        assert!(bytes.len() <= MAX_PATTERN_LEN && bytes.len() >= 16);
        patterns.bytes[i] = [0; MAX_PATTERN_LEN];
        patterns.bytes[i][..bytes.len()].copy_from_slice(bytes);
        patterns.lens[i] = bytes.len();
        patterns.names[i] = name;
    }
    patterns.count = list.len();
    for (hits, size) in HITS.iter().zip(&HIT_BLOCK_SIZE) {
        hits.store(0, Ordering::Relaxed);
        size.store(0, Ordering::Relaxed);
    }
}

fn arm() {
    ARMED.store(true, Ordering::Release);
}

/// Disarms and fails if any pattern was found in a freed block during `step`.
fn assert_clean(step: &str) {
    ARMED.store(false, Ordering::Release);
    let patterns = PATTERNS.read().unwrap();
    let found: Vec<String> = (0..patterns.count)
        .filter(|&i| HITS[i].load(Ordering::Relaxed) > 0)
        .map(|i| {
            format!(
                "{} ({} block(s), the last of {} bytes)",
                patterns.names[i],
                HITS[i].load(Ordering::Relaxed),
                HIT_BLOCK_SIZE[i].load(Ordering::Relaxed)
            )
        })
        .collect();
    assert!(
        found.is_empty(),
        "{step}: plaintext left in freed memory: {}",
        found.join(", ")
    );
}

const TEXT_VALUE: &[u8] = b"PLAINTEXT-MARKER-text-5eC2e7-value";
const FILE_MARKER: &[u8] = b"PLAINTEXT-MARKER-file-5eC2e7-body";
const FILE_VALUE: &[u8] = b"-----BEGIN CERTIFICATE-----\nPLAINTEXT-MARKER-file-5eC2e7-body\n\"q\" \\ \t\n-----END CERTIFICATE-----\n";
const TEXT_VALUE_2: &[u8] = b"PLAINTEXT-MARKER-v2-5eC2e7-rotated";
const MASTER_KEY: &[u8; 32] = b"MASTER-KEY-MARKER-5eC2e7-0123456";
const TENANT: &str = "tenant-z";

fn c(text: &str) -> CString {
    CString::new(text).unwrap()
}

/// Runs a C ABI call that must succeed.
fn ok(status: tbs_status, what: &str) {
    assert_eq!(status, tbs_status::TBS_OK, "{what}");
}

/// The bytes of a buffer the library filled.
fn bytes(buffer: &tbs_buffer) -> &[u8] {
    // SAFETY: filled by the library: `len` readable bytes at `data`.
    unsafe { std::slice::from_raw_parts(buffer.data, buffer.len) }
}

/// The tenant's data key, unwrapped from the store file with the master key. The wrapped key
/// is a sealed blob (docs/FORMATS.md, "Sealed blob"), opened here with `aes-gcm` directly:
/// `version u8 = 1 | key_id u32 BE | nonce[12] | ciphertext | tag[16]`, AAD = the
/// length-prefixed (`u32 BE`) fields label `tbsecrets/v1/dek`, header, tenant, dek_id (`u32 BE`).
fn data_key(db: &Path) -> [u8; 32] {
    let conn = rusqlite::Connection::open(db).unwrap();
    let (dek_id, wrapped): (u32, Vec<u8>) = conn
        .query_row(
            "SELECT dek_id, wrapped FROM tbs_tenant_keys WHERE tenant = ?1",
            [TENANT],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    const HEADER_LEN: usize = 1 + 4 + 12;
    assert_eq!(wrapped.len(), HEADER_LEN + 32 + 16, "a wrapped 32-byte key");
    assert_eq!(wrapped[0], 1, "blob format version");
    let header = &wrapped[..HEADER_LEN];
    let mut aad = Vec::new();
    for field in [
        &b"tbsecrets/v1/dek"[..],
        header,
        TENANT.as_bytes(),
        &dek_id.to_be_bytes(),
    ] {
        aad.extend_from_slice(&(field.len() as u32).to_be_bytes());
        aad.extend_from_slice(field);
    }
    use aes_gcm::aead::{Aead, Payload};
    use aes_gcm::KeyInit;
    let kek = aes_gcm::Aes256Gcm::new(MASTER_KEY.into());
    let plain = Zeroizing::new(
        kek.decrypt(
            aes_gcm::Nonce::from_slice(&header[5..]),
            Payload {
                msg: &wrapped[HEADER_LEN..],
                aad: &aad,
            },
        )
        .expect("the master key opens the wrapped data key"),
    );
    let mut key = [0u8; 32];
    key.copy_from_slice(&plain);
    key
}

#[test]
fn released_memory_never_holds_plaintext_or_keys() {
    // 0. The detector works: an unwiped copy is caught, a wiped one is not.
    set_patterns(&[("text value", TEXT_VALUE)]);
    arm();
    drop(std::hint::black_box(TEXT_VALUE.to_vec()));
    ARMED.store(false, Ordering::Release);
    assert_eq!(
        HITS[0].load(Ordering::Relaxed),
        1,
        "the detector must see a copy"
    );
    set_patterns(&[("text value", TEXT_VALUE)]);
    arm();
    drop(std::hint::black_box(Zeroizing::new(TEXT_VALUE.to_vec())));
    assert_clean("control: Zeroizing");

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("z.db");
    let db_c = c(db.to_str().unwrap());
    let tenant = c(TENANT);
    let (text_name, file_name) = (c("api-key"), c("ca-pem"));
    let base64_key = base64::engine::general_purpose::STANDARD.encode(MASTER_KEY);
    let base_patterns: [(&'static str, &[u8]); 5] = [
        ("text value", TEXT_VALUE),
        ("file value", FILE_MARKER),
        ("text value v2", TEXT_VALUE_2),
        ("master key", MASTER_KEY),
        ("master key base64", base64_key.as_bytes()),
    ];

    // 1. Open and create through the C ABI.
    set_patterns(&base_patterns);
    arm();
    let mut store: *mut tbs_store = std::ptr::null_mut();
    // SAFETY (all C ABI calls below): valid NUL-terminated strings, buffers and handles.
    unsafe {
        ok(
            tbs_store_open(
                db_c.as_ptr(),
                MASTER_KEY.as_ptr(),
                32,
                std::ptr::null(),
                &mut store,
            ),
            "open",
        );
        ok(
            tbs_store_create(
                store,
                tenant.as_ptr(),
                text_name.as_ptr(),
                TBS_TYPE_TEXT,
                TEXT_VALUE.as_ptr(),
                TEXT_VALUE.len(),
                std::ptr::null(),
                std::ptr::null_mut(),
            ),
            "create text",
        );
        ok(
            tbs_store_create(
                store,
                tenant.as_ptr(),
                file_name.as_ptr(),
                TBS_TYPE_TEXT_FILE,
                FILE_VALUE.as_ptr(),
                FILE_VALUE.len(),
                std::ptr::null(),
                std::ptr::null_mut(),
            ),
            "create file",
        );
    }
    assert_clean("open + create (C ABI)");

    // From here the data key is a marker too.
    let dek = data_key(&db);
    let mut patterns = base_patterns.to_vec();
    patterns.push(("data key", &dek));
    set_patterns(&patterns);

    // 2. get + tbs_buffer_free.
    arm();
    for name in [&text_name, &file_name] {
        let mut value = tbs_buffer::empty();
        // SAFETY: as above.
        unsafe {
            ok(
                tbs_store_get(store, tenant.as_ptr(), name.as_ptr(), &mut value),
                "get",
            );
            assert!(contains(bytes(&value), TEXT_VALUE) || contains(bytes(&value), FILE_MARKER));
            tbs_buffer_free(&mut value);
        }
    }
    assert_clean("tbs_store_get + tbs_buffer_free");

    // 3. Every resolve path, each result freed with tbs_buffer_free.
    let text_doc = "k=${secret:api-key} pem=${secret:ca-pem;type:TEXT_FILE} k2=${secret:api-key}";
    let json_doc = r#"{"a": ["${secret:api-key}", {"pem": "x ${secret:ca-pem} y"}], "n": 1}"#;
    let json_path = dir.path().join("config.json");
    std::fs::write(&json_path, json_doc).unwrap();
    let json_path_c = c(json_path.to_str().unwrap());
    let out_path_c = c(dir.path().join("out.json").to_str().unwrap());
    arm();
    // SAFETY: as above.
    unsafe {
        for flags in [0, TBS_RESOLVE_MATERIALIZE_FILES] {
            let mut out = tbs_buffer::empty();
            ok(
                tbs_store_resolve_text(
                    store,
                    tenant.as_ptr(),
                    text_doc.as_ptr(),
                    text_doc.len(),
                    flags,
                    &mut out,
                ),
                "resolve text",
            );
            assert!(contains(bytes(&out), TEXT_VALUE));
            tbs_buffer_free(&mut out);
            ok(
                tbs_store_resolve_json(
                    store,
                    tenant.as_ptr(),
                    json_doc.as_ptr(),
                    json_doc.len(),
                    flags,
                    &mut out,
                ),
                "resolve json",
            );
            assert!(contains(bytes(&out), TEXT_VALUE));
            tbs_buffer_free(&mut out);
            ok(
                tbs_store_resolve_file(
                    store,
                    tenant.as_ptr(),
                    json_path_c.as_ptr(),
                    TBS_FORMAT_AUTO,
                    flags,
                    &mut out,
                ),
                "resolve file",
            );
            tbs_buffer_free(&mut out);
            ok(
                tbs_store_resolve_file_to(
                    store,
                    tenant.as_ptr(),
                    json_path_c.as_ptr(),
                    out_path_c.as_ptr(),
                    TBS_FORMAT_JSON,
                    flags,
                ),
                "resolve file to",
            );
        }
        ok(tbs_store_clear_materialized(store), "clear");
        // Failed resolves fetch and drop values too.
        let mut out = tbs_buffer::empty();
        for doc in [
            "${secret:api-key} ${secret:ca-pem} ${secret:missing}",
            "${secret:api-key} ${secret:ca-pem;type:TEXT}",
        ] {
            assert_ne!(
                tbs_store_resolve_text(
                    store,
                    tenant.as_ptr(),
                    doc.as_ptr(),
                    doc.len(),
                    0,
                    &mut out
                ),
                tbs_status::TBS_OK
            );
        }
        assert!(out.data.is_null());
    }
    assert_clean("resolve text/json/file/file_to (C ABI)");

    // 4. Writes that handle plaintext: update with check-and-set, rollback.
    arm();
    // SAFETY: as above.
    unsafe {
        ok(
            tbs_store_update_value(
                store,
                tenant.as_ptr(),
                text_name.as_ptr(),
                TEXT_VALUE_2.as_ptr(),
                TEXT_VALUE_2.len(),
                1,
                std::ptr::null_mut(),
            ),
            "update",
        );
        ok(
            tbs_store_rollback(
                store,
                tenant.as_ptr(),
                text_name.as_ptr(),
                1,
                std::ptr::null_mut(),
            ),
            "rollback",
        );
    }
    assert_clean("update_value + rollback (C ABI)");

    // 5. Closing drops the master key, the data key and the cache.
    arm();
    // SAFETY: as above; the handle is not used afterwards.
    unsafe { ok(tbs_store_close(store), "close") };
    assert_clean("tbs_store_close (MasterKey, DataKey, cache)");

    // 6. The Rust API: SecretValue, resolve outputs held in Zeroizing, store drop.
    arm();
    {
        let rust = Box::new(
            SecretStorage::open(
                &db,
                StorageOptions::with_master_key(MasterKey::from_bytes(MASTER_KEY).unwrap()),
            )
            .unwrap(),
        );
        let value = rust.get(TENANT, "api-key").unwrap();
        assert!(contains(value.as_bytes(), TEXT_VALUE));
        drop(value);
        let resolved = Zeroizing::new(rust.resolve_str(TENANT, text_doc).unwrap().into_owned());
        drop(resolved);
        let resolved = Zeroizing::new(rust.resolve_json(TENANT, json_doc).unwrap().into_owned());
        drop(resolved);
        drop(rust);
    }
    assert_clean("Rust API: SecretValue, resolve, SecretStorage drop");

    // 7. The master key from TBS_MASTER_KEY (set before arming: setting it copies the text).
    std::env::set_var("TBS_MASTER_KEY", &base64_key);
    arm();
    // SAFETY: as above.
    unsafe {
        let mut store: *mut tbs_store = std::ptr::null_mut();
        ok(
            tbs_store_open(
                db_c.as_ptr(),
                std::ptr::null(),
                0,
                std::ptr::null(),
                &mut store,
            ),
            "open from the environment",
        );
        let mut value = tbs_buffer::empty();
        ok(
            tbs_store_get(store, tenant.as_ptr(), file_name.as_ptr(), &mut value),
            "get",
        );
        tbs_buffer_free(&mut value);
        ok(tbs_store_close(store), "close");
    }
    assert_clean("master key from TBS_MASTER_KEY");
    std::env::remove_var("TBS_MASTER_KEY");
}
