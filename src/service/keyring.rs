//! Tenant data keys: created on a tenant's first write, unwrapped by the key provider once
//! per handle (or once per cache lifetime, see [`Keyring::forget_unwrapped`]) and kept with
//! their AES key schedules prepared.

use crate::crypto::provider::{self, KeyProvider};
use crate::crypto::DataKey;
use crate::error::{Error, Result};
use crate::model::now_millis;
use crate::store::{Store, WrappedKey};
use foldhash::HashMap;
use parking_lot::{Mutex, RwLock};
use std::sync::Arc;

/// The master key's provider and the key's id in the store.
struct Master {
    key: Arc<dyn KeyProvider>,
    kek_id: u32,
}

/// The master key and the data keys unwrapped so far.
pub struct Keyring {
    master: RwLock<Master>,
    /// The key a master-key rotation is committing, so that data keys rewrapped by it are
    /// read on this handle between its commit and [`Keyring::set_master`].
    staged: RwLock<Option<Master>>,
    unwrapped: Mutex<HashMap<(String, u32), Arc<DataKey>>>,
}

impl Keyring {
    /// A keyring over the store's current master key.
    pub fn new(master: Arc<dyn KeyProvider>, kek_id: u32) -> Keyring {
        Keyring {
            master: RwLock::new(Master {
                key: master,
                kek_id,
            }),
            staged: RwLock::new(None),
            unwrapped: Mutex::new(HashMap::default()),
        }
    }

    /// A tenant's data key by id (a data key id's content never changes).
    pub fn key(&self, backend: &mut dyn Store, tenant: &str, dek_id: u32) -> Result<Arc<DataKey>> {
        if let Some(key) = self.unwrapped.lock().get(&(tenant.to_owned(), dek_id)) {
            return Ok(key.clone());
        }
        let wrapped = backend.tenant_key(tenant, dek_id)?.ok_or_else(|| {
            Error::integrity(format!(
                "data key {dek_id} of tenant '{tenant}' is missing from the store"
            ))
        })?;
        self.remember(tenant, &wrapped)
    }

    /// The tenant's newest data key, created (and stored wrapped) on first use.
    pub fn active_key(&self, backend: &mut dyn Store, tenant: &str) -> Result<Arc<DataKey>> {
        if let Some(wrapped) = backend.active_tenant_key(tenant)? {
            return self.key_from(tenant, &wrapped);
        }
        let key = DataKey::generate(1);
        let wrapped = self.wrap(tenant, &key)?;
        if backend.insert_tenant_key(tenant, &wrapped)? {
            let key = Arc::new(key);
            self.unwrapped
                .lock()
                .insert((tenant.to_owned(), key.id()), key.clone());
            return Ok(key);
        }
        // Another process created the tenant's key first: use theirs.
        let theirs = backend.active_tenant_key(tenant)?.ok_or_else(|| {
            Error::internal(format!(
                "data key of tenant '{tenant}' vanished while created"
            ))
        })?;
        self.key_from(tenant, &theirs)
    }

    fn key_from(&self, tenant: &str, wrapped: &WrappedKey) -> Result<Arc<DataKey>> {
        if let Some(key) = self
            .unwrapped
            .lock()
            .get(&(tenant.to_owned(), wrapped.dek_id))
        {
            return Ok(key.clone());
        }
        self.remember(tenant, wrapped)
    }

    fn remember(&self, tenant: &str, wrapped: &WrappedKey) -> Result<Arc<DataKey>> {
        // The provider is cloned out: a slow provider call (a token, a program) holds no lock.
        let holder = self.holder_of(wrapped.kek_id)?;
        let key = Arc::new(provider::unwrap(
            &*holder,
            tenant,
            wrapped.dek_id,
            &wrapped.blob,
        )?);
        self.unwrapped
            .lock()
            .insert((tenant.to_owned(), wrapped.dek_id), key.clone());
        Ok(key)
    }

    /// The provider of master key `kek_id`: the current one, or the one a rotation is
    /// committing; a newer key than this handle holds is WRONG_MASTER_KEY.
    fn holder_of(&self, kek_id: u32) -> Result<Arc<dyn KeyProvider>> {
        let master = self.master.read();
        if master.kek_id == kek_id {
            return Ok(master.key.clone());
        }
        match &*self.staged.read() {
            Some(next) if next.kek_id == kek_id => Ok(next.key.clone()),
            _ => Err(crate::store::master_key_rotated()),
        }
    }
}

impl Keyring {
    /// Wraps a data key under the current master key.
    pub fn wrap(&self, tenant: &str, key: &DataKey) -> Result<WrappedKey> {
        let (holder, kek_id) = {
            let master = self.master.read();
            (master.key.clone(), master.kek_id)
        };
        Ok(WrappedKey {
            dek_id: key.id(),
            kek_id,
            blob: provider::wrap(&*holder, kek_id, tenant, key)?,
            created_at: now_millis(),
        })
    }

    /// The current master key id.
    pub fn kek_id(&self) -> u32 {
        self.master.read().kek_id
    }

    /// Whether every provider a change may call (the current one, and the one a rotation is
    /// committing) runs in this process only ([`KeyProvider::in_process`]).
    pub fn in_process(&self) -> bool {
        self.master.read().key.in_process()
            && self
                .staged
                .read()
                .as_ref()
                .is_none_or(|next| next.key.in_process())
    }

    /// The current master key's provider.
    pub fn provider(&self) -> Arc<dyn KeyProvider> {
        self.master.read().key.clone()
    }

    /// Rewraps a data key wrapped by the current master key under `new` with id
    /// `new_kek_id` (the key's bytes never leave a wiped buffer).
    pub fn rewrap(
        &self,
        tenant: &str,
        wrapped: &WrappedKey,
        new: &dyn KeyProvider,
        new_kek_id: u32,
    ) -> Result<WrappedKey> {
        // The provider is cloned out so that a slow provider call holds no lock.
        let current = self.provider();
        let blob = provider::rewrap(
            &*current,
            tenant,
            wrapped.dek_id,
            &wrapped.blob,
            new,
            new_kek_id,
        )?;
        Ok(WrappedKey {
            dek_id: wrapped.dek_id,
            kek_id: new_kek_id,
            blob,
            created_at: wrapped.created_at,
        })
    }

    /// Lets this handle read data keys wrapped by `key` (id `kek_id`) while a master-key
    /// rotation to it commits; [`Keyring::set_master`] or [`Keyring::unstage`] ends it.
    pub fn stage(&self, key: Arc<dyn KeyProvider>, kek_id: u32) {
        *self.staged.write() = Some(Master { key, kek_id });
    }

    /// Forgets the staged key of a rotation that did not commit.
    pub fn unstage(&self) {
        *self.staged.write() = None;
    }

    /// Switches to a new master key after a committed rotation. Unwrapped data keys stay
    /// valid: a rotation rewraps them, it does not change them.
    pub fn set_master(&self, key: Arc<dyn KeyProvider>, kek_id: u32) {
        *self.master.write() = Master { key, kek_id };
        *self.staged.write() = None;
    }

    /// Wipes every unwrapped data key (the cache lifetime ran out): the next use of each
    /// unwraps it again through the provider.
    pub fn forget_unwrapped(&self) {
        self.unwrapped.lock().clear();
    }

    /// Caches a data key created by a tenant-key rotation.
    pub fn remember_new(&self, tenant: &str, key: Arc<DataKey>) {
        self.unwrapped
            .lock()
            .insert((tenant.to_owned(), key.id()), key);
    }
}
