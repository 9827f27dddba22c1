//! The commands that write or resolve secrets and need more than a line: `put` and `resolve`.

use super::io::{open_file, read_text, read_value};
use super::{admin, open_existing_with, principal};
use crate::args::Global;
use crate::render;
use std::io::Write;
use std::path::Path;
use tbsecrets::placeholder::{VariableSource, Variables};
use tbsecrets::{
    write_private_atomically, write_private_atomically_with, DocumentFormat, MaterializeOptions,
    ResolveOptions,
};
use tbsecrets::{Error, ErrorCode, Limits, Result, Role, SecretType, Session};
use zeroize::Zeroizing;

/// The message variables of `--var KEY=VALUE` (`metadata.` or `data.` may prefix KEY; a bare
/// KEY is metadata).
fn variables(vars: &[String]) -> Result<Variables> {
    let mut variables = Variables::new();
    for var in vars {
        let (key, value) = var
            .split_once('=')
            .ok_or_else(|| Error::invalid(format!("--var '{var}': expected KEY=VALUE")))?;
        let (source, key) = match key.split_once('.') {
            Some(("metadata", key)) => (VariableSource::Metadata, key),
            Some(("data", key)) => (VariableSource::Data, key),
            _ => (VariableSource::Metadata, key),
        };
        if key.is_empty() {
            return Err(Error::invalid(format!("--var '{var}': the key is empty")));
        }
        variables.insert(source, key, value);
    }
    Ok(variables)
}

/// Resolves a config file to stdout or, atomically and with mode 0600, to `output`.
#[allow(clippy::too_many_arguments)]
pub(super) fn resolve(
    g: &Global,
    file: &Path,
    output: Option<&Path>,
    format: DocumentFormat,
    materialize_dir: Option<&Path>,
    source: Option<&str>,
    vars: &[String],
    json: bool,
) -> Result<Vec<u8>> {
    let variables = variables(vars)?;
    let store = open_existing_with(g, |options| {
        options.materialize = materialize_dir.map(|dir| MaterializeOptions {
            dir: dir.to_path_buf(),
            keep_on_close: true,
        });
    })?;
    let options = ResolveOptions {
        materialize_files: materialize_dir.is_some(),
        variables: (!variables.is_empty()).then_some(&variables),
    };
    let service = store.session(principal(g, Role::Service)?);
    // Text from a regular file is streamed (memory stays bounded); JSON and YAML are checked
    // as whole documents, so they are read whole.
    let streamed = !format.is_json(file) && !format.is_yaml(file) && is_regular_file(file);
    let mut resolved = Zeroizing::new(String::new());
    if streamed {
        let open = || open_file(file, &file.display().to_string());
        match output {
            // One pass into the temporary file, which is dropped if resolution fails.
            Some(path) => write_private_atomically_with(path, |out| {
                service
                    .resolve_text_stream(&g.tenant, open, out, false, options)
                    .map(drop)
            })?,
            // Checked in a first pass, so that nothing reaches stdout unless all resolves.
            None => {
                let mut stdout = std::io::stdout().lock();
                service.resolve_text_stream(&g.tenant, open, &mut stdout, true, options)?;
                stdout
                    .flush()
                    .map_err(|e| Error::storage(format!("cannot write the result: {e}")))?;
            }
        }
    } else {
        *resolved = service.resolve_file(&g.tenant, file, format, options)?;
    }
    if let Some(source) = source {
        // Recording references is management: TENANT_ADMIN unless --as says otherwise.
        admin(&store, g)?.track_references(&g.tenant, source, &read_text(file)?)?;
    }
    store.close()?;
    match output {
        Some(path) => {
            if !streamed {
                write_private_atomically(path, resolved.as_bytes())?;
            }
            let done = render::Resolved {
                action: "resolved",
                file: file.display().to_string(),
                output: path.display().to_string(),
                source,
            };
            render::report(json, &done, || {
                let recorded = source
                    .map(|s| format!("; recorded its references as source '{s}'"))
                    .unwrap_or_default();
                format!(
                    "resolved {} into {} (mode 0600){recorded}",
                    file.display(),
                    path.display()
                )
            })
        }
        // Streamed: already on stdout.
        None if streamed => Ok(Vec::new()),
        None => Ok(std::mem::take(&mut *resolved).into_bytes()),
    }
}

/// Whether `path` is a regular file (which can be read twice), not a pipe or a device.
fn is_regular_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file())
}

/// Creates the secret or adds a version, reading the value from `file` or stdin once its type
/// is known; reports the action and the new version.
#[allow(clippy::too_many_arguments)]
pub(super) fn put(
    store: &Session<'_>,
    tenant: &str,
    name: &str,
    requested: Option<SecretType>,
    description: Option<&str>,
    file: Option<&Path>,
    limits: &Limits,
    json: bool,
) -> Result<Vec<u8>> {
    let existing = match store.info(tenant, name) {
        Ok(info) => Some(info),
        Err(e) if e.code() == ErrorCode::NotFound => None,
        Err(e) => return Err(e),
    };
    let secret_type = match (&existing, requested) {
        (Some(info), Some(t)) if info.secret_type != t => {
            return Err(Error::new(
                ErrorCode::TypeMismatch,
                format!(
                    "secret '{name}' is {}; its type cannot change to {t}",
                    info.secret_type
                ),
            ))
        }
        (Some(info), _) => info.secret_type,
        (None, t) => t.unwrap_or(SecretType::Text),
    };
    let mut value = read_value(file, secret_type, limits)?;
    if secret_type == SecretType::Text {
        // A TEXT value typed or piped in ends with one newline that is not part of it.
        let newline = if value.ends_with(b"\r\n") {
            2
        } else {
            usize::from(value.ends_with(b"\n"))
        };
        let len = value.len() - newline;
        value.truncate(len);
    }
    let created = existing.is_none();
    let info = match existing {
        Some(_) => {
            let info = store.update_value(tenant, name, &value, None)?;
            match description {
                Some(d) => store.update_description(tenant, name, d)?,
                None => info,
            }
        }
        None => store.create(tenant, name, secret_type, &value, description.unwrap_or(""))?,
    };
    let done = render::Changed {
        action: if created { "created" } else { "updated" },
        secret: &info,
    };
    render::report(json, &done, || {
        if created {
            format!(
                "created secret '{name}' ({}) version {}",
                info.secret_type, info.version
            )
        } else {
            format!("updated secret '{name}' to version {}", info.version)
        }
    })
}
