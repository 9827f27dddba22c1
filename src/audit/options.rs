//! Where audit records go.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// Receives every audit record as it is written (e.g. to ship it to a remote log).
///
/// Called after the record is in the file, outside the log's locks, on the thread that wrote
/// it; it must not block for long. It may call the store, which may write further records.
pub trait AuditSink: Send + Sync {
    /// One sealed record: a complete JSON line, without its trailing newline.
    fn record(&self, line: &str);
}

impl<F: Fn(&str) + Send + Sync> AuditSink for F {
    fn record(&self, line: &str) {
        self(line)
    }
}

/// Audit settings of a store handle.
#[derive(Clone)]
pub struct AuditOptions {
    /// Write audit records at all (default true).
    pub enabled: bool,
    /// The log file. `None`: the file `TBS_AUDIT_LOG` names, else beside a SQLite store
    /// (`<store>.audit.jsonl`); a PostgreSQL store has no other default (give one per node,
    /// or a sink).
    pub path: Option<PathBuf>,
    /// Also hand every record to this sink.
    pub sink: Option<Arc<dyn AuditSink>>,
    /// Batch value uses into one record per principal, secret and outcome, written at
    /// least every second (default true). Off, every use is written at once.
    pub batch_uses: bool,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            enabled: true,
            path: None,
            sink: None,
            batch_uses: true,
        }
    }
}

impl AuditOptions {
    /// No audit log at all.
    pub fn disabled() -> Self {
        AuditOptions {
            enabled: false,
            ..AuditOptions::default()
        }
    }
}

impl fmt::Debug for AuditOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditOptions")
            .field("enabled", &self.enabled)
            .field("path", &self.path)
            .field("sink", &self.sink.as_ref().map(|_| "<sink>"))
            .field("batch_uses", &self.batch_uses)
            .finish()
    }
}
