//! JNI exports of sessions restricted to an allow-list of names (docs/JAVA.md,
//! "Allow-lists").

use super::bridge::{handle_ref, into_handle, BridgeResult, StrArg, ThrowSecretStorageException};
use crate::access::{Actor, AllowList, Principal, Role};
use crate::error::Error;
use ::jni::objects::{JClass, JString};
use ::jni::sys::{jint, jlong};
use ::jni::{jni_mangle, EnvUnowned};
use std::sync::Arc;

/// Like `open_session`, restricted to the `count` allow-list entries of `names`, joined by
/// `'\n'` (no entry can hold a control character; `count` 0 with an empty string: nothing is
/// allowed). A count that does not match the joined entries is INVALID_ARGUMENT.
#[allow(clippy::too_many_arguments)]
#[jni_mangle("org.tbsecrets.internal.Native")]
pub extern "system" fn open_session_allowed<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    tenant: JString<'local>,
    role: jint,
    id: JString<'local>,
    count: jint,
    names: JString<'local>,
) -> jlong {
    env.with_env(|env| -> BridgeResult<jlong> {
        // SAFETY: the handle is live during the call (see `bridge::handle_ref`).
        let parent = unsafe { handle_ref(handle) }?;
        let (mut t, mut i, mut n) = (StrArg::new(), StrArg::new(), StrArg::new());
        let tenant = t.read(env, &tenant, "tenantId")?;
        crate::model::validate_tenant(tenant)?;
        let role = usize::try_from(role)
            .ok()
            .and_then(|r| Role::ALL.get(r).copied())
            .ok_or_else(|| Error::invalid(format!("unknown role {role}")))?;
        let joined = n.read(env, &names, "allowedNames")?;
        let allowed = split_entries(joined, count)?;
        let mut principal = Principal::new(tenant, role);
        if let Some(id) = i.read_opt(env, &id, "principal id")? {
            principal = principal.with_id(id);
        }
        Ok(into_handle(
            Arc::clone(&parent.storage),
            Actor::Principal(principal.with_allowed_names(allowed)),
        ))
    })
    .resolve::<ThrowSecretStorageException>()
}

/// The allow-list of `count` entries joined by `'\n'`.
fn split_entries(joined: &str, count: jint) -> crate::Result<AllowList> {
    let count = usize::try_from(count)
        .map_err(|_| Error::invalid(format!("invalid allow-list size {count}")))?;
    if count == 0 {
        if !joined.is_empty() {
            return Err(Error::invalid("allow-list entries given with a size of 0"));
        }
        return AllowList::new(Vec::<&str>::new());
    }
    let entries: Vec<&str> = joined.split('\n').collect();
    if entries.len() != count {
        return Err(Error::invalid(
            "allow-list entries must not contain control characters",
        ));
    }
    AllowList::new(entries)
}

#[cfg(test)]
mod tests {
    use super::split_entries;
    use crate::ErrorCode;

    #[test]
    fn entries_split_and_checked() {
        let list = split_entries("a\nb-*", 2).expect("two entries");
        assert!(list.allows("b-1") && list.allows("a") && !list.allows("c"));
        assert!(split_entries("", 0).expect("empty").is_empty());
        for (joined, count) in [("a\nb", 1), ("a", 0), ("a", -1), ("", 1), ("a\n", 2)] {
            let err = split_entries(joined, count).expect_err(joined);
            assert_eq!(err.code(), ErrorCode::InvalidArgument, "{joined:?} {count}");
        }
    }
}
