//! Where the master key comes from: an explicit option, `TBS_MASTER_KEY` (base64) or
//! `TBS_MASTER_KEY_FILE` (a base64 text file that must not be readable by group or others).

use super::keys::MasterKey;
use crate::error::{Error, Result};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use zeroize::Zeroizing;

/// Environment variable holding the master key as base64.
pub const ENV_MASTER_KEY: &str = "TBS_MASTER_KEY";
/// Environment variable naming a key file.
pub const ENV_MASTER_KEY_FILE: &str = "TBS_MASTER_KEY_FILE";

/// Reads a key file, refusing one that group or others may read or write.
pub fn read_key_file(path: &Path) -> Result<MasterKey> {
    let meta = fs::metadata(path)
        .map_err(|e| Error::invalid(format!("cannot read key file {}: {e}", path.display())))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::invalid(format!(
            "key file {} is accessible by group or others (mode {mode:04o}); run `chmod 600 {}`",
            path.display(),
            path.display()
        )));
    }
    let text =
        Zeroizing::new(fs::read_to_string(path).map_err(|e| {
            Error::invalid(format!("cannot read key file {}: {e}", path.display()))
        })?);
    MasterKey::from_base64(&text)
        .map_err(|e| Error::invalid(format!("key file {}: {}", path.display(), e.message())))
}

/// Writes a new key file with mode 0600; refuses to overwrite an existing file.
pub fn write_key_file(path: &Path, key: &MasterKey) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::storage(format!("cannot create key file {}: {e}", path.display())))?;
    let mut text = key.to_base64();
    text.push('\n');
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// The master key from the environment: `TBS_MASTER_KEY`, else `TBS_MASTER_KEY_FILE`, else none.
pub fn master_key_from_env() -> Result<Option<MasterKey>> {
    if let Some(value) = std::env::var_os(ENV_MASTER_KEY) {
        let value = Zeroizing::new(
            value
                .into_string()
                .map_err(|_| Error::invalid(format!("{ENV_MASTER_KEY} is not valid UTF-8")))?,
        );
        return MasterKey::from_base64(&value)
            .map(Some)
            .map_err(|e| Error::invalid(format!("{ENV_MASTER_KEY}: {}", e.message())));
    }
    if let Some(path) = std::env::var_os(ENV_MASTER_KEY_FILE) {
        return read_key_file(Path::new(&path)).map(Some);
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn key_file_round_trip_and_permission_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let key = MasterKey::generate();
        write_key_file(&path, &key).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let read = read_key_file(&path).unwrap();
        assert_eq!(read.to_base64().as_str(), key.to_base64().as_str());
        // Refuses to overwrite.
        assert!(write_key_file(&path, &key).is_err());

        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let err = read_key_file(&path).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidArgument);
        assert!(err.message().contains("group or others"), "{err}");
        assert!(err.message().contains("0640"), "{err}");
    }
}
