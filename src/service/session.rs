//! Acting on behalf of a principal: a [`Session`] checks the store's access policy before
//! every operation (deny by default) and then runs it on the store.

use super::{DocumentFormat, ResolveOptions, RotationReport, SecretStorage, SecretValue};
use crate::access::{Operation, Policy, Principal};
use crate::crypto::MasterKey;
use crate::error::Result;
use crate::model::{ListQuery, Page, SecretInfo, SecretType, VersionInfo};
use crate::placeholder::Reference;
use crate::store::StoredReference;
use std::borrow::Cow;
use std::path::Path;
use std::time::Duration;

/// A tenant name no principal belongs to: only grants for any tenant match it.
const ALL_TENANTS: &str = "\u{1f}all tenants";

/// The store as seen by one principal.
#[derive(Debug, Clone)]
pub struct Session<'a> {
    store: &'a SecretStorage,
    principal: Principal,
}

impl SecretStorage {
    /// A session acting as `principal`, checked against the store's policy.
    pub fn session(&self, principal: Principal) -> Session<'_> {
        Session {
            store: self,
            principal,
        }
    }

    /// The access policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

impl<'a> Session<'a> {
    /// Who this session acts as.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    fn check(&self, operation: Operation, tenant: &str) -> Result<&'a SecretStorage> {
        self.store
            .policy
            .check(&self.principal, operation, tenant)?;
        Ok(self.store)
    }

    /// [`SecretStorage::create`], needs WRITE.
    pub fn create(
        &self,
        tenant: &str,
        name: &str,
        secret_type: SecretType,
        value: &[u8],
        description: &str,
    ) -> Result<SecretInfo> {
        self.check(Operation::Write, tenant)?
            .create(tenant, name, secret_type, value, description)
    }

    /// [`SecretStorage::update_value`], needs WRITE.
    pub fn update_value(
        &self,
        tenant: &str,
        name: &str,
        value: &[u8],
        expected_version: Option<u64>,
    ) -> Result<SecretInfo> {
        self.check(Operation::Write, tenant)?
            .update_value(tenant, name, value, expected_version)
    }

    /// [`SecretStorage::update_description`], needs WRITE.
    pub fn update_description(
        &self,
        tenant: &str,
        name: &str,
        description: &str,
    ) -> Result<SecretInfo> {
        self.check(Operation::Write, tenant)?
            .update_description(tenant, name, description)
    }

    /// [`SecretStorage::rollback`], needs WRITE.
    pub fn rollback(&self, tenant: &str, name: &str, version: u64) -> Result<SecretInfo> {
        self.check(Operation::Write, tenant)?
            .rollback(tenant, name, version)
    }

    /// [`SecretStorage::delete_with`], needs DELETE.
    pub fn delete_with(&self, tenant: &str, name: &str, force: bool) -> Result<()> {
        self.check(Operation::Delete, tenant)?
            .delete_with(tenant, name, force)
    }

    /// [`SecretStorage::info`], needs READ.
    pub fn info(&self, tenant: &str, name: &str) -> Result<SecretInfo> {
        self.check(Operation::Read, tenant)?.info(tenant, name)
    }

    /// [`SecretStorage::list`], needs READ.
    pub fn list(&self, tenant: &str, query: &ListQuery) -> Result<Page<SecretInfo>> {
        self.check(Operation::Read, tenant)?.list(tenant, query)
    }

    /// [`SecretStorage::history`], needs READ.
    pub fn history(&self, tenant: &str, name: &str) -> Result<Vec<VersionInfo>> {
        self.check(Operation::Read, tenant)?.history(tenant, name)
    }

    /// [`SecretStorage::where_used`], needs READ.
    pub fn where_used(&self, tenant: &str, name: &str) -> Result<Vec<StoredReference>> {
        self.check(Operation::Read, tenant)?
            .where_used(tenant, name)
    }

    /// [`SecretStorage::unused`], needs READ.
    pub fn unused(&self, tenant: &str, age: Duration) -> Result<Vec<SecretInfo>> {
        self.check(Operation::Read, tenant)?.unused(tenant, age)
    }

    /// [`SecretStorage::stale`], needs READ.
    pub fn stale(&self, tenant: &str, age: Duration) -> Result<Vec<SecretInfo>> {
        self.check(Operation::Read, tenant)?.stale(tenant, age)
    }

    /// [`SecretStorage::get_value`], needs RESOLVE.
    pub fn get_value(&self, tenant: &str, name: &str) -> Result<SecretValue> {
        self.check(Operation::Resolve, tenant)?
            .get_value(tenant, name)
    }

    /// [`SecretStorage::resolve_str_with`], needs RESOLVE.
    pub fn resolve_str<'t>(
        &self,
        tenant: &str,
        text: &'t str,
        options: ResolveOptions,
    ) -> Result<Cow<'t, str>> {
        self.check(Operation::Resolve, tenant)?
            .resolve_str_with(tenant, text, options)
    }

    /// [`SecretStorage::resolve_json_with`], needs RESOLVE.
    pub fn resolve_json<'t>(
        &self,
        tenant: &str,
        json: &'t str,
        options: ResolveOptions,
    ) -> Result<Cow<'t, str>> {
        self.check(Operation::Resolve, tenant)?
            .resolve_json_with(tenant, json, options)
    }

    /// [`SecretStorage::resolve_file`], needs RESOLVE.
    pub fn resolve_file(
        &self,
        tenant: &str,
        path: &Path,
        format: DocumentFormat,
        options: ResolveOptions,
    ) -> Result<String> {
        self.check(Operation::Resolve, tenant)?
            .resolve_file(tenant, path, format, options)
    }

    /// [`SecretStorage::track_references`], needs WRITE.
    pub fn track_references(
        &self,
        tenant: &str,
        source_id: &str,
        document: &str,
    ) -> Result<Vec<Reference>> {
        self.check(Operation::Write, tenant)?
            .track_references(tenant, source_id, document)
    }

    /// [`SecretStorage::untrack`], needs WRITE.
    pub fn untrack(&self, tenant: &str, source_id: &str) -> Result<usize> {
        self.check(Operation::Write, tenant)?
            .untrack(tenant, source_id)
    }

    /// [`SecretStorage::rotate_tenant_key`], needs WRITE.
    pub fn rotate_tenant_key(&self, tenant: &str) -> Result<RotationReport> {
        self.check(Operation::Write, tenant)?
            .rotate_tenant_key(tenant)
    }

    /// [`SecretStorage::rotate_master_key`], needs WRITE in every tenant (by default: only
    /// SYS_ADMIN).
    pub fn rotate_master_key(&self, new_key: &MasterKey) -> Result<RotationReport> {
        self.check(Operation::Write, ALL_TENANTS)?
            .rotate_master_key(new_key)
    }
}
