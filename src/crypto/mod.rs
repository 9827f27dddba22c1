//! Envelope encryption (docs/FORMATS.md, "Sealed blob"): a master key wraps per-tenant data
//! keys; data keys seal values with AES-256-GCM into authenticated blobs.

pub mod blob;
pub mod key_source;
pub mod keys;
pub mod mac;
pub mod provider;
pub mod signing;

pub use blob::{open, open_with_aad, seal, BlobContext};
pub use key_source::{master_key_from_env, read_key_file, write_key_file};
pub use keys::{DataKey, MasterKey};
pub use mac::MacKey;
pub use provider::{KeyProvider, KeyWrapper, WrapperProvider};
pub use signing::{ExportPublicKey, ExportSigner};
