//! JNI exports of the secret operations: create, update, describe, delete, undelete, destroy,
//! info, list, history, rollback.

use super::bridge::args as decode;
use super::bridge::{export, info_result, value_bytes, wire, StrArg, TenantName, TENANT};
use ::jni::objects::{JByteArray, JString};
use ::jni::sys::{jboolean, jint, jlong};

export! {
    /// Creates a secret; returns its `SecretInfo` (wire form).
    fn create(env, h; tenant: JString<'local>, name: JString<'local>, secret_type: jint,
              value: JByteArray<'local>, description: JString<'local>) -> JByteArray<'local> {
        let (mut args, mut d) = (TenantName::new(), StrArg::new());
        let (tenant, name) = args.read(env, &tenant, &name)?;
        let description = d.read(env, &description, "description")?;
        let secret_type = decode::secret_type(secret_type)?;
        let value = value_bytes(env, h, &value, Some(secret_type))?;
        let info = h.session().create(tenant, name, secret_type, &value, description)?;
        info_result(env, &info)
    }

    /// Writes a new version of a value (`expected_version` < 0: no check-and-set).
    fn update_value(env, h; tenant: JString<'local>, name: JString<'local>,
                    value: JByteArray<'local>, expected_version: jlong) -> JByteArray<'local> {
        let mut args = TenantName::new();
        let (tenant, name) = args.read(env, &tenant, &name)?;
        let value = value_bytes(env, h, &value, None)?;
        let expected = decode::expected_version(expected_version);
        info_result(env, &h.session().update_value(tenant, name, &value, expected)?)
    }

    /// Changes a description; returns the `SecretInfo`.
    fn update_description(env, h; tenant: JString<'local>, name: JString<'local>,
                          description: JString<'local>) -> JByteArray<'local> {
        let (mut args, mut d) = (TenantName::new(), StrArg::new());
        let (tenant, name) = args.read(env, &tenant, &name)?;
        let description = d.read(env, &description, "description")?;
        info_result(env, &h.session().update_description(tenant, name, description)?)
    }

    /// Deletes a secret (with `force`, even while referenced).
    fn delete(env, h; tenant: JString<'local>, name: JString<'local>, force: jboolean) -> () {
        let mut args = TenantName::new();
        let (tenant, name) = args.read(env, &tenant, &name)?;
        Ok(h.session().delete_with(tenant, name, force)?)
    }

    /// Makes a deleted secret live again.
    fn undelete(env, h; tenant: JString<'local>, name: JString<'local>) -> () {
        let mut args = TenantName::new();
        let (tenant, name) = args.read(env, &tenant, &name)?;
        Ok(h.session().undelete(tenant, name)?)
    }

    /// Erases a secret, live or deleted, and all its versions for good.
    fn destroy(env, h; tenant: JString<'local>, name: JString<'local>) -> () {
        let mut args = TenantName::new();
        let (tenant, name) = args.read(env, &tenant, &name)?;
        Ok(h.session().destroy(tenant, name)?)
    }

    /// Metadata of one secret.
    fn info(env, h; tenant: JString<'local>, name: JString<'local>) -> JByteArray<'local> {
        let mut args = TenantName::new();
        let (tenant, name) = args.read(env, &tenant, &name)?;
        info_result(env, &h.session().info(tenant, name)?)
    }

    /// A page of a tenant's secrets (`name_contains` and `after`, the cursor, may be null;
    /// `limit` 0 means all); with `deleted`, of its deleted secrets.
    fn list(env, h; tenant: JString<'local>, name_contains: JString<'local>,
            after: JString<'local>, offset: jint, limit: jint,
            deleted: jboolean) -> JByteArray<'local> {
        let (mut t, mut f, mut a) = (StrArg::new(), StrArg::new(), StrArg::new());
        let tenant = t.read(env, &tenant, TENANT)?;
        let filter = f.read_opt(env, &name_contains, "nameContains")?;
        let after = a.read_opt(env, &after, "after")?;
        let query = decode::list_query(filter, after, offset, limit, deleted)?;
        let page = h.session().list(tenant, &query)?;
        wire(env, |w| w.page(&page))
    }

    /// Kept versions of a secret, newest first.
    fn history(env, h; tenant: JString<'local>, name: JString<'local>) -> JByteArray<'local> {
        let mut args = TenantName::new();
        let (tenant, name) = args.read(env, &tenant, &name)?;
        let versions = h.session().history(tenant, name)?;
        wire(env, |w| w.versions(&versions))
    }

    /// Writes a new version equal to a kept one; returns the `SecretInfo`.
    fn rollback(env, h; tenant: JString<'local>, name: JString<'local>, version: jlong)
        -> JByteArray<'local>
    {
        let mut args = TenantName::new();
        let (tenant, name) = args.read(env, &tenant, &name)?;
        info_result(env, &h.session().rollback(tenant, name, decode::version(version)?)?)
    }
}
