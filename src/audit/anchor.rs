//! Anchors: the store remembers, per audit chain, the sequence number and MAC of the last
//! record it saw written (sealed with the audit key), so that cutting lines off the end of a
//! log — which leaves a valid shorter chain — is detected too. Anchors are raised with the
//! usage counters (at most every few seconds while the store is used) and on close.

use super::entry::ChainHead;
use crate::crypto::mac::MAC_LEN;
use crate::crypto::MacKey;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use base64::Engine;

/// The metadata key prefix of anchors; the chain is named by its first record's MAC.
const KEY_PREFIX: &str = "audit_anchor:";

/// Domain label of an anchor's tag.
const LABEL: &[u8] = b"tbsecrets audit anchor v1\0";

/// A chain's anchored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Anchor {
    /// Its sequence number.
    pub seq: u64,
    /// Its MAC (base64, as in the log).
    pub mac: String,
}

/// The metadata key of the anchor of the chain whose first record has MAC `genesis`.
pub(crate) fn key_of(genesis: &str) -> String {
    format!("{KEY_PREFIX}{genesis}")
}

fn tagged_data(genesis: &str, seq: u64, mac: &[u8]) -> Vec<u8> {
    let mut data = Vec::with_capacity(LABEL.len() + genesis.len() + 8 + mac.len());
    data.extend_from_slice(LABEL);
    data.extend_from_slice(genesis.as_bytes());
    data.extend_from_slice(&seq.to_be_bytes());
    data.extend_from_slice(mac);
    data
}

/// The stored form: `seq (8, big-endian) | mac (32) | tag (32)`; it sorts by `seq`.
pub(crate) fn encode(key: &MacKey, genesis: &str, head: &ChainHead) -> Option<Vec<u8>> {
    let mac = B64.decode(&head.mac).ok()?;
    let mut value = Vec::with_capacity(8 + 2 * MAC_LEN);
    value.extend_from_slice(&head.seq.to_be_bytes());
    value.extend_from_slice(&mac);
    value.extend_from_slice(&key.tag(&tagged_data(genesis, head.seq, &mac)));
    Some(value)
}

/// Reads a stored anchor; `None` when it is malformed or its tag does not verify (edited,
/// or moved from another chain).
pub(crate) fn decode(key: &MacKey, genesis: &str, value: &[u8]) -> Option<Anchor> {
    if value.len() != 8 + 2 * MAC_LEN {
        return None;
    }
    let seq = u64::from_be_bytes(value[..8].try_into().ok()?);
    let mac = &value[8..8 + MAC_LEN];
    if !key.verify(&tagged_data(genesis, seq, mac), &value[8 + MAC_LEN..]) {
        return None;
    }
    Some(Anchor {
        seq,
        mac: B64.encode(mac),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let key = MacKey::derive(b"k", b"l");
        let head = ChainHead {
            seq: 42,
            mac: B64.encode([7u8; 32]),
        };
        let value = encode(&key, "genesis", &head).unwrap();
        let anchor = decode(&key, "genesis", &value).unwrap();
        assert_eq!((anchor.seq, anchor.mac), (42, head.mac.clone()));
        assert!(decode(&key, "other chain", &value).is_none());
        let mut lowered = value.clone();
        lowered[7] = 41;
        assert!(decode(&key, "genesis", &lowered).is_none());
        assert!(decode(&MacKey::derive(b"x", b"l"), "genesis", &value).is_none());
        // Larger sequence numbers sort after smaller ones, as the stores compare them.
        let later = encode(&key, "genesis", &ChainHead { seq: 300, ..head }).unwrap();
        assert!(later[..8] > value[..8]);
    }
}
