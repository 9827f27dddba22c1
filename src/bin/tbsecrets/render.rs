//! Human-readable and JSON output of metadata.

use tbsecrets::{Error, Result, SecretInfo, VersionInfo};

/// RFC 3339 text of a millisecond timestamp.
fn time(millis: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(millis.max(0) as u64);
    humantime::format_rfc3339_seconds(at).to_string()
}

/// Pretty JSON of any serialisable metadata, with a final newline.
pub fn json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut out = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::internal(format!("cannot render JSON: {e}")))?;
    out.push(b'\n');
    Ok(out)
}

/// One secret's metadata as `key: value` lines.
pub fn info(info: &SecretInfo) -> Vec<u8> {
    let last_used = info.last_used_at.map_or_else(|| "never".to_owned(), time);
    format!(
        "name:          {}\ntenant:        {}\ntype:          {}\ndescription:   {}\nversion:       {}\ncreated:       {}\nupdated:       {}\nvalue updated: {}\nlast used:     {}\nuse count:     {}\n",
        info.name,
        info.tenant,
        info.secret_type,
        info.description,
        info.version,
        time(info.created_at),
        time(info.updated_at),
        time(info.value_updated_at),
        last_used,
        info.use_count
    )
    .into_bytes()
}

/// A table of secrets.
pub fn list(items: &[SecretInfo]) -> Vec<u8> {
    let width = items
        .iter()
        .map(|i| i.name.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = format!(
        "{:<width$}  {:<9}  {:>7}  {:<20}  DESCRIPTION\n",
        "NAME", "TYPE", "VERSION", "UPDATED"
    );
    for i in items {
        out.push_str(&format!(
            "{:<width$}  {:<9}  {:>7}  {:<20}  {}\n",
            i.name,
            i.secret_type.as_str(),
            i.version,
            time(i.updated_at),
            i.description
        ));
    }
    out.into_bytes()
}

/// A table of versions.
pub fn history(versions: &[VersionInfo]) -> Vec<u8> {
    let mut out = String::from("VERSION  CREATED               CURRENT\n");
    for v in versions {
        out.push_str(&format!(
            "{:>7}  {:<20}  {}\n",
            v.version,
            time(v.created_at),
            if v.current { "*" } else { "" }
        ));
    }
    out.into_bytes()
}

/// References as `NAME<TAB>TYPE` lines (`*` for the short form, any type).
pub fn references(refs: &[tbsecrets::placeholder::Reference]) -> Vec<u8> {
    refs.iter()
        .map(|r| {
            format!(
                "{}\t{}\n",
                r.name,
                r.secret_type.map_or("*", tbsecrets::SecretType::as_str)
            )
        })
        .collect::<String>()
        .into_bytes()
}
