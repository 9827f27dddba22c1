//! The options of a resolve call: [`ResolveOptions`], the [`DocumentFormat`] a file is read
//! in, and the [`Syntax`] a document is resolved in.

use crate::error::{Error, Result};
use std::path::Path;

/// Options of one resolve call. Build it with `..Default::default()` so that new options
/// keep the call compiling.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResolveOptions<'v> {
    /// Replace TEXT_FILE placeholders with the path of a private file holding the value
    /// instead of the value itself.
    pub materialize_files: bool,
    /// The message variables that per-message names (`{{metadata.KEY}}`, `{{data.KEY}}`) are
    /// filled from (docs/ARCHITECTURE.md, "Per-message names"). Per-message names resolve
    /// only in a session restricted to an allow-list, and only to names on it; without
    /// variables every such placeholder is a problem of the strict error.
    pub variables: Option<&'v crate::placeholder::Variables>,
}

/// How `resolve_file` reads a document.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DocumentFormat {
    /// JSON for a `.json` file name, YAML for `.yaml`/`.yml`, text otherwise.
    #[default]
    Auto,
    /// A JSON document: string values are resolved, keys are not.
    Json,
    /// Plain text: every placeholder is resolved.
    Text,
    /// A YAML document: scalar values are resolved, keys are not (see
    /// [`placeholder::resolve_yaml`](crate::placeholder::resolve_yaml)).
    Yaml,
}

/// The syntax a document is resolved in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Syntax {
    Text,
    Json,
    Yaml,
}

impl Syntax {
    /// JSON for `true`, text for `false` (the older boolean form).
    pub(crate) fn json_or_text(json: bool) -> Syntax {
        if json {
            Syntax::Json
        } else {
            Syntax::Text
        }
    }
}

impl DocumentFormat {
    /// Whether a document at `path` is read as JSON in this format.
    pub fn is_json(self, path: &Path) -> bool {
        match self {
            DocumentFormat::Json => true,
            DocumentFormat::Text | DocumentFormat::Yaml => false,
            DocumentFormat::Auto => path
                .extension()
                .is_some_and(|ext| ext.eq_ignore_ascii_case("json")),
        }
    }

    /// Whether a document at `path` is read as YAML in this format.
    pub fn is_yaml(self, path: &Path) -> bool {
        match self {
            DocumentFormat::Yaml => true,
            DocumentFormat::Json | DocumentFormat::Text => false,
            DocumentFormat::Auto => path.extension().is_some_and(|ext| {
                ext.eq_ignore_ascii_case("yaml") || ext.eq_ignore_ascii_case("yml")
            }),
        }
    }

    /// The syntax a document at `path` is resolved in.
    pub(crate) fn syntax(self, path: &Path) -> Syntax {
        if self.is_yaml(path) {
            Syntax::Yaml
        } else {
            Syntax::json_or_text(self.is_json(path))
        }
    }
}

impl std::str::FromStr for DocumentFormat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(DocumentFormat::Auto),
            "json" => Ok(DocumentFormat::Json),
            "text" => Ok(DocumentFormat::Text),
            "yaml" | "yml" => Ok(DocumentFormat::Yaml),
            _ => Err(Error::invalid(format!(
                "unknown format '{s}': expected auto, json, yaml or text"
            ))),
        }
    }
}
