//! The master key behind a [`KeyProvider`]: a store opened through an external wrapper
//! (as a program, a host callback or a KMS client would be), the data-key cache lifetime,
//! a provider that fails (KEY_UNAVAILABLE, nothing changed) and rotation between providers.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tbsecrets::{
    ErrorCode, KeyProvider, KeyWrapper, MasterKey, Result, SecretStorage, SecretType,
    StorageOptions, WrapperProvider,
};
use zeroize::Zeroizing;

/// An external key holder: seals with a key this process never hands to the store, counts
/// its calls and can be switched off.
struct Holder {
    key: MasterKey,
    unwraps: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
}

impl Holder {
    fn check(&self) -> Result<()> {
        if self.down.load(Ordering::SeqCst) {
            return Err(tbsecrets::Error::new(
                ErrorCode::KeyUnavailable,
                "the test key holder is down",
            ));
        }
        Ok(())
    }
}

impl KeyWrapper for Holder {
    fn describe(&self) -> String {
        "test-holder".into()
    }

    fn wrap(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        self.check()?;
        let context = tbsecrets::BlobContext::KeyCheck;
        let mut out = aad.len().to_be_bytes().to_vec();
        out.extend_from_slice(aad);
        out.extend(self.key.seal(1, &context, plaintext)?);
        Ok(out)
    }

    fn unwrap(&self, aad: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.check()?;
        self.unwraps.fetch_add(1, Ordering::SeqCst);
        let len = usize::from_be_bytes(wrapped[..8].try_into().unwrap());
        assert_eq!(
            &wrapped[8..8 + len],
            aad,
            "the wrapper is given the same context"
        );
        self.key
            .open(&tbsecrets::BlobContext::KeyCheck, &wrapped[8 + len..])
    }
}

struct Fixture {
    provider: Arc<dyn KeyProvider>,
    unwraps: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
}

fn holder() -> Fixture {
    let unwraps = Arc::new(AtomicUsize::new(0));
    let down = Arc::new(AtomicBool::new(false));
    let provider = Arc::new(WrapperProvider::new(Holder {
        key: MasterKey::generate(),
        unwraps: unwraps.clone(),
        down: down.clone(),
    }));
    Fixture {
        provider,
        unwraps,
        down,
    }
}

#[test]
fn a_store_opens_and_reopens_only_with_its_provider() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let fx = holder();
    let store = SecretStorage::open(
        &path,
        StorageOptions::with_key_provider(fx.provider.clone()),
    )
    .unwrap();
    store
        .create("t", "MyApiKey", SecretType::Text, b"s3cr3t", "")
        .unwrap();
    store.close().unwrap();

    let again = SecretStorage::open(
        &path,
        StorageOptions::with_key_provider(fx.provider.clone()),
    )
    .unwrap();
    assert_eq!(
        again.get("t", "MyApiKey").unwrap().as_str().unwrap(),
        "s3cr3t"
    );
    again.close().unwrap();

    let other = holder();
    let err =
        SecretStorage::open(&path, StorageOptions::with_key_provider(other.provider)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::WrongMasterKey, "{err}");
    let raw = SecretStorage::open(
        &path,
        StorageOptions::with_master_key(MasterKey::generate()),
    )
    .unwrap_err();
    assert_eq!(raw.code(), ErrorCode::WrongMasterKey, "{raw}");

    let both = StorageOptions {
        master_key: Some(MasterKey::generate()),
        ..StorageOptions::with_key_provider(fx.provider)
    };
    let err = SecretStorage::open(&path, both).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument, "{err}");
}

#[test]
fn an_unreachable_provider_is_key_unavailable_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let fx = holder();
    let store = SecretStorage::open(
        &path,
        StorageOptions::with_key_provider(fx.provider.clone()),
    )
    .unwrap();
    store.create("t", "a", SecretType::Text, b"1", "").unwrap();
    store.close().unwrap();
    let bytes = std::fs::read(&path).unwrap();

    fx.down.store(true, Ordering::SeqCst);
    let err = SecretStorage::open(
        &path,
        StorageOptions::with_key_provider(fx.provider.clone()),
    )
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::KeyUnavailable, "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "nothing written");

    // Down after the open: a first write of a new tenant needs a new data key wrapped.
    fx.down.store(false, Ordering::SeqCst);
    let store = SecretStorage::open(
        &path,
        StorageOptions::with_key_provider(fx.provider.clone()),
    )
    .unwrap();
    fx.down.store(true, Ordering::SeqCst);
    let err = store
        .create("u", "b", SecretType::Text, b"2", "")
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::KeyUnavailable, "{err}");
    assert_eq!(store.get("u", "b").unwrap_err().code(), ErrorCode::NotFound);
    fx.down.store(false, Ordering::SeqCst);
    store.create("u", "b", SecretType::Text, b"2", "").unwrap();
    assert_eq!(store.get("u", "b").unwrap().as_bytes(), b"2");
}

#[test]
fn data_keys_are_unwrapped_again_after_forget_and_after_their_lifetime() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let fx = holder();
    {
        let store = SecretStorage::open(
            &path,
            StorageOptions::with_key_provider(fx.provider.clone()),
        )
        .unwrap();
        store.create("t", "a", SecretType::Text, b"1", "").unwrap();
    }

    // Cached for the handle's life by default: one unwrap for many gets.
    let store = SecretStorage::open(
        &path,
        StorageOptions::with_key_provider(fx.provider.clone()),
    )
    .unwrap();
    let at_open = fx.unwraps.load(Ordering::SeqCst);
    for _ in 0..100 {
        assert_eq!(store.get("t", "a").unwrap().as_bytes(), b"1");
    }
    assert_eq!(fx.unwraps.load(Ordering::SeqCst), at_open + 1);
    store.forget_keys();
    assert_eq!(store.get("t", "a").unwrap().as_bytes(), b"1");
    assert_eq!(
        fx.unwraps.load(Ordering::SeqCst),
        at_open + 2,
        "unwrapped again"
    );
    // While the provider is down, a forgotten key cannot be used: a typed error, no value.
    store.forget_keys();
    fx.down.store(true, Ordering::SeqCst);
    assert_eq!(
        store.get("t", "a").unwrap_err().code(),
        ErrorCode::KeyUnavailable
    );
    fx.down.store(false, Ordering::SeqCst);
    store.close().unwrap();

    // A lifetime of zero: every operation starts by forgetting (the coarse clock permitting).
    let options = StorageOptions {
        key_cache_ttl: Some(Duration::from_millis(1)),
        ..StorageOptions::with_key_provider(fx.provider.clone())
    };
    let store = SecretStorage::open(&path, options).unwrap();
    let before = fx.unwraps.load(Ordering::SeqCst);
    let started = std::time::Instant::now();
    while fx.unwraps.load(Ordering::SeqCst) < before + 3 {
        assert_eq!(store.get("t", "a").unwrap().as_bytes(), b"1");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "keys are never forgotten"
        );
    }
}

#[test]
fn the_master_key_moves_between_providers_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let raw = MasterKey::generate();
    let fx = holder();
    let store = SecretStorage::open(&path, StorageOptions::with_master_key(raw.clone())).unwrap();
    for tenant in ["a", "b", "c"] {
        store
            .create(tenant, "s", SecretType::Text, tenant.as_bytes(), "")
            .unwrap();
    }
    let mut calls = Vec::new();
    let report = store
        .rotate_key_provider(fx.provider.clone(), &mut |done, total| {
            calls.push((done, total))
        })
        .unwrap();
    assert_eq!(report.keys, 3);
    assert_eq!(
        calls.last(),
        Some(&(4, 4)),
        "three tenants and the reserved key"
    );
    assert_eq!(store.get("b", "s").unwrap().as_bytes(), b"b");
    store.close().unwrap();

    let err = SecretStorage::open(&path, StorageOptions::with_master_key(raw.clone())).unwrap_err();
    assert_eq!(err.code(), ErrorCode::WrongMasterKey);
    let store = SecretStorage::open(
        &path,
        StorageOptions::with_key_provider(fx.provider.clone()),
    )
    .unwrap();
    assert_eq!(store.get("c", "s").unwrap().as_bytes(), b"c");
    let back = MasterKey::generate();
    store
        .rotate_key_provider(Arc::new(back.clone()), &mut |_, _| {})
        .unwrap();
    store.close().unwrap();
    let store = SecretStorage::open(&path, StorageOptions::with_master_key(back)).unwrap();
    assert_eq!(store.get("a", "s").unwrap().as_bytes(), b"a");
    assert!(store.verify_audit_log(None).unwrap().is_intact());
}
