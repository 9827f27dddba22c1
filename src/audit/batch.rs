//! Batching of value uses: the hot path adds to an in-memory counter per (principal,
//! tenant, secret, action, outcome); a flush turns each counter into one record.
//!
//! Counters live in shards, one per thread in turn, each on its own cache lines: threads
//! reading at once take different locks and do not bounce a shared line between cores. A
//! counter is found by a hash of its secret and outcome (no key is built) and confirmed field
//! by field.

use super::entry::{clip, AuditAction, AuditEntry};
use crate::access::Actor;
use crate::error::ErrorCode;
use parking_lot::Mutex;
use std::cell::Cell;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};

/// How many shards (a power of two).
const SHARDS: usize = 16;

/// Counters keyed by their own hash (already mixed: no second hashing).
type Counters = HashMap<u64, Vec<AuditEntry>, BuildHasherDefault<IdentityHasher>>;

/// One lock and its counters, alone on its cache lines.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard(Mutex<Counters>);

/// Pending use counters.
#[derive(Debug)]
pub(crate) struct UseBatch {
    shards: Box<[Shard]>,
    hasher: foldhash::fast::RandomState,
}

impl Default for UseBatch {
    fn default() -> Self {
        UseBatch {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }
}

/// The next shard to hand to a thread that has none yet.
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's shard (the same index in every batch).
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

#[inline]
fn shard_of_this_thread() -> usize {
    SHARD.with(|shard| {
        let mut index = shard.get();
        if index == usize::MAX {
            index = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
            shard.set(index);
        }
        index
    })
}

/// The principal's tenant as recorded: only when it differs from the tenant acted on.
#[inline]
fn principal_tenant<'a>(actor: &'a Actor, tenant: &str) -> Option<&'a str> {
    actor
        .principal()
        .map(|p| p.tenant.as_str())
        .filter(|own| *own != tenant)
}

/// One use of a value as the batch counts it: who (`actor`) did what (`action`) on which
/// secret (`tenant`, `name`), with which `outcome`, at `now` (epoch milliseconds).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Use<'a> {
    /// Who used the value.
    pub actor: &'a Actor,
    /// The operation that used it.
    pub action: AuditAction,
    /// The tenant acted on.
    pub tenant: &'a str,
    /// The secret's name ("" for an attempt refused before any secret was named).
    pub name: &'a str,
    /// How the use ended.
    pub outcome: ErrorCode,
    /// When, in epoch milliseconds.
    pub now: i64,
}

/// Whether `entry` counts the same uses as `u` (every field but the time).
#[inline]
fn counts(entry: &AuditEntry, u: &Use<'_>) -> bool {
    let role = u.actor.role_name();
    entry.action == u.action
        && entry.outcome == u.outcome
        // Role names are static strings: usually the very same one.
        && (std::ptr::eq(entry.role, role) || entry.role == role)
        && entry.names.first().map_or("", String::as_str) == u.name
        && entry.tenant == u.tenant
        && entry.principal.as_deref() == u.actor.principal().and_then(|p| p.id.as_deref())
        && entry.principal_tenant.as_deref() == principal_tenant(u.actor, u.tenant)
}

impl UseBatch {
    /// Counts one call that used (or failed to use) a value.
    #[inline]
    pub fn note(&self, u: Use<'_>) {
        let u = Use {
            tenant: clip(u.tenant),
            name: clip(u.name),
            ..u
        };
        let (actor, now) = (u.actor, u.now);
        // Hashed on the secret, the outcome and the principal's id (the role and the
        // principal's tenant are few: actors differing only there share a bucket and are told
        // apart by `counts`). With the id, the many users of one secret get a bucket each
        // instead of one bucket searched on every use (200,000 users: 20 s of memcmp).
        let mut hasher = self.hasher.build_hasher();
        u.tenant.hash(&mut hasher);
        u.name.hash(&mut hasher);
        (u.action, u.outcome).hash(&mut hasher);
        actor
            .principal()
            .and_then(|p| p.id.as_deref())
            .hash(&mut hasher);
        let key = hasher.finish();
        let mut counters = self.shards[shard_of_this_thread()].0.lock();
        let bucket = counters.entry(key).or_default();
        if let Some(entry) = bucket.iter_mut().find(|e| counts(e, &u)) {
            entry.count += 1;
            entry.time = entry.time.max(now);
            // Threads sharing a shard may note out of clock order: keep the earliest.
            entry.since = Some(entry.since.map_or(now, |since| since.min(now)));
            return;
        }
        // An attempt refused before any secret was named has no name.
        let names = if u.name.is_empty() {
            Vec::new()
        } else {
            vec![u.name.to_owned()]
        };
        let mut entry = AuditEntry::new(actor, u.action, u.tenant, names, u.outcome);
        entry.time = now;
        entry.since = Some(now);
        bucket.push(entry);
    }

    /// Takes every pending record, the shards' counters of the same thing merged, oldest
    /// first.
    pub fn take(&self) -> Vec<AuditEntry> {
        let mut entries: Vec<AuditEntry> = Vec::new();
        for shard in self.shards.iter() {
            let counters = std::mem::take(&mut *shard.0.lock());
            entries.extend(counters.into_values().flatten());
        }
        entries.sort_by(|a, b| {
            same_thing(a)
                .cmp(&same_thing(b))
                .then(a.since.cmp(&b.since))
        });
        let mut merged: Vec<AuditEntry> = Vec::with_capacity(entries.len());
        for entry in entries {
            match merged.last_mut() {
                Some(last) if same_thing(last) == same_thing(&entry) => {
                    last.count += entry.count;
                    last.time = last.time.max(entry.time);
                    last.since = last.since.min(entry.since);
                }
                _ => merged.push(entry),
            }
        }
        merged.sort_by(|a, b| (a.since, &a.tenant, &a.names).cmp(&(b.since, &b.tenant, &b.names)));
        merged
    }

    /// Puts records back after a failed write (they stay separate records of the same facts
    /// as uses counted meanwhile).
    pub fn restore(&self, entries: Vec<AuditEntry>) {
        let mut counters = self.shards[shard_of_this_thread()].0.lock();
        for entry in entries {
            // Keys that hashing never produces in practice: the entries are not found by
            // `note`, only taken by the next flush.
            let key = u64::MAX - counters.len() as u64;
            counters.entry(key).or_default().push(entry);
        }
    }
}

/// What makes two counters count the same thing.
#[allow(clippy::type_complexity)]
fn same_thing(
    e: &AuditEntry,
) -> (
    &str,
    &str,
    &[String],
    &str,
    &str,
    Option<&str>,
    Option<&str>,
) {
    (
        e.role,
        &e.tenant,
        &e.names,
        e.action.as_str(),
        e.outcome.as_str(),
        e.principal.as_deref(),
        e.principal_tenant.as_deref(),
    )
}

/// The identity hash for keys that are already hashes.
#[derive(Debug, Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{Principal, Role};

    /// A use of the secret "a" of tenant "t".
    fn noted(actor: &Actor, action: AuditAction, outcome: ErrorCode, now: i64) -> Use<'_> {
        Use {
            actor,
            action,
            tenant: "t",
            name: "a",
            outcome,
            now,
        }
    }

    #[test]
    fn users_of_one_secret_are_counted_apart_without_sharing_a_bucket() {
        let batch = UseBatch::default();
        let users: Vec<Actor> = (0..1000)
            .map(|i| {
                Actor::Principal(Principal::new("t", Role::TenantAdmin).with_id(format!("u{i}")))
            })
            .collect();
        for (i, user) in users.iter().enumerate() {
            batch.note(noted(user, AuditAction::Get, ErrorCode::Ok, i as i64));
            batch.note(noted(user, AuditAction::Get, ErrorCode::Ok, i as i64 + 1));
        }
        let longest = batch
            .shards
            .iter()
            .flat_map(|shard| shard.0.lock().values().map(Vec::len).collect::<Vec<_>>())
            .max();
        // A bucket of its own per user: noting a use does not search the others.
        assert_eq!(longest, Some(1));
        let entries = batch.take();
        assert_eq!(entries.len(), 1000);
        assert!(
            entries.iter().all(|e| e.count == 2),
            "each user's two uses in one record"
        );
    }

    #[test]
    fn counts_per_principal_secret_and_outcome() {
        let batch = UseBatch::default();
        let service = Actor::Principal(Principal::new("t", Role::Service));
        batch.note(noted(&service, AuditAction::Get, ErrorCode::Ok, 10));
        batch.note(noted(&service, AuditAction::Get, ErrorCode::Ok, 30));
        batch.note(noted(&Actor::Host, AuditAction::Get, ErrorCode::Ok, 20));
        batch.note(noted(&service, AuditAction::Get, ErrorCode::NotFound, 40));
        let entries = batch.take();
        assert!(batch.take().is_empty());
        assert_eq!(entries.len(), 3);
        let first = &entries[0];
        assert_eq!(
            (first.role, first.count, first.since, first.time),
            ("SERVICE", 2, Some(10), 30)
        );
        assert_eq!((entries[1].role, entries[1].count), ("HOST", 1));
        assert_eq!(entries[2].outcome, ErrorCode::NotFound);
    }

    #[test]
    fn counters_of_several_threads_merge_into_one_record() {
        let batch = UseBatch::default();
        let service = Actor::Principal(Principal::new("t", Role::Service).with_id("node"));
        std::thread::scope(|scope| {
            for i in 0..SHARDS as i64 + 3 {
                let (batch, service) = (&batch, &service);
                scope.spawn(move || {
                    batch.note(noted(service, AuditAction::Resolve, ErrorCode::Ok, 100 + i))
                });
            }
        });
        let entries = batch.take();
        assert_eq!(entries.len(), 1, "{entries:?}");
        let entry = &entries[0];
        assert_eq!(entry.count, SHARDS as u64 + 3);
        assert_eq!(entry.since, Some(100));
        assert_eq!(entry.time, 100 + SHARDS as i64 + 2);
        assert_eq!(entry.principal.as_deref(), Some("node"));
    }

    #[test]
    fn a_late_note_of_an_earlier_time_keeps_the_earliest_since() {
        // What two threads sharing a shard do when the later-stamped one locks first.
        let batch = UseBatch::default();
        let service = Actor::Principal(Principal::new("t", Role::Service));
        batch.note(noted(&service, AuditAction::Get, ErrorCode::Ok, 102));
        batch.note(noted(&service, AuditAction::Get, ErrorCode::Ok, 100));
        batch.note(noted(&service, AuditAction::Get, ErrorCode::Ok, 101));
        let entries = batch.take();
        assert_eq!(entries.len(), 1, "{entries:?}");
        assert_eq!(
            (entries[0].count, entries[0].since, entries[0].time),
            (3, Some(100), 102)
        );
    }

    #[test]
    fn a_principal_of_another_tenant_is_counted_apart() {
        let batch = UseBatch::default();
        let own = Actor::Principal(Principal::new("t", Role::SysAdmin));
        let other = Actor::Principal(Principal::new("u", Role::SysAdmin));
        batch.note(noted(
            &own,
            AuditAction::Get,
            ErrorCode::PermissionDenied,
            1,
        ));
        batch.note(noted(
            &other,
            AuditAction::Get,
            ErrorCode::PermissionDenied,
            2,
        ));
        let entries = batch.take();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].principal_tenant.as_deref(), Some("u"));
    }
}
