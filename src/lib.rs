//! tbsecrets: a native secret store for ThingsBoard and the C programs around it.

pub mod error;
pub mod model;
pub mod placeholder;

pub use error::{Error, ErrorCode, PlaceholderProblem, Result};
pub use model::{Limits, ListQuery, Page, SecretInfo, SecretType, VersionInfo};
