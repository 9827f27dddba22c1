//! JNI exports of sessions restricted to an allow-list of names, and of resolving with
//! per-message names (docs/JAVA.md, "Allow-lists and per-message names").

use super::bridge::{document_bytes, export, into_handle, BridgeResult, StrArg, TENANT};
use super::lifecycle::read_principal;
use super::resolve::resolve_document;
use crate::access::{Actor, AllowList};
use crate::error::Error;
use crate::placeholder::{VariableSource, Variables};
use crate::service::ResolveOptions;
use ::jni::objects::{JByteArray, JObjectArray, JString};
use ::jni::sys::{jboolean, jint, jlong};
use ::jni::Env;
use std::sync::Arc;

/// Most metadata entries one resolve call takes.
const MAX_VARIABLES: usize = 4096;

export! {
    /// Like `open_session`, restricted to the `count` allow-list entries of `names`, joined by
    /// `'\n'` (no entry can hold a control character; `count` 0 with an empty string: nothing
    /// is allowed). A count that does not match the joined entries is INVALID_ARGUMENT.
    fn open_session_allowed(env, parent; tenant: JString<'local>, role: jint, id: JString<'local>,
                            count: jint, names: JString<'local>) -> jlong {
        let principal = read_principal(env, &tenant, role, &id)?;
        let mut n = StrArg::new();
        let allowed = split_entries(n.read(env, &names, "allowedNames")?, count)?;
        Ok(into_handle(
            Arc::clone(&parent.storage),
            Actor::Principal(principal.with_allowed_names(allowed)),
        ))
    }

    /// Resolves a UTF-8 document in `doc[offset..offset + len]` (JSON or text) filling
    /// per-message names from the message metadata `keys[i]` = `values[i]` (filling
    /// `{{metadata.KEY}}`). Returns `null` when nothing was replaced.
    fn resolve_vars(env, h; tenant: JString<'local>, doc: JByteArray<'local>, offset: jint,
                    len: jint, json: jboolean, keys: JObjectArray<'local, JString<'local>>,
                    values: JObjectArray<'local, JString<'local>>) -> JByteArray<'local> {
        let mut t = StrArg::new();
        let tenant = t.read(env, &tenant, TENANT)?;
        let variables = read_variables(env, &keys, &values)?;
        let bytes = document_bytes(env, &doc, offset, len)?;
        let options = ResolveOptions {
            variables: Some(&variables),
            ..ResolveOptions::default()
        };
        let syntax = crate::service::Syntax::json_or_text(json);
        resolve_document(env, &h.session(), tenant, &bytes, syntax, options)
    }
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

/// The variables of two parallel `String[]` (same length, no null element: Java checks).
fn read_variables(
    env: &mut Env<'_>,
    keys: &JObjectArray<'_, JString<'_>>,
    values: &JObjectArray<'_, JString<'_>>,
) -> BridgeResult<Variables> {
    let count = keys.len(env)?;
    if count != values.len(env)? || count > MAX_VARIABLES {
        return Err(Error::invalid(format!(
            "metadata: {count} keys for {} values (at most {MAX_VARIABLES})",
            values.len(env)?
        ))
        .into());
    }
    let mut variables = Variables::new();
    let mut arg = StrArg::new();
    for i in 0..count {
        let key = keys.get_element(env, i)?;
        let read = arg.read(env, &key, "metadata key").map(str::to_owned);
        env.delete_local_ref(key);
        let key = read?;
        let value = values.get_element(env, i)?;
        let read = arg.read(env, &value, "metadata value").map(str::to_owned);
        env.delete_local_ref(value);
        let value = read?;
        // Keys are taken as they are: a Java map holds the message metadata only.
        variables.insert(VariableSource::Metadata, key, value);
    }
    Ok(variables)
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
