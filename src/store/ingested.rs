//! The embedded default's record of which request ids were ever ingested.
//!
//! Scoring looks a transaction's device up by its request id: in the signal
//! cache first, then in the ingest's job row. For a request id that was never
//! ingested (a payment without a device check, a typo) the job lookup is a
//! statement that finds nothing, on every such score. One process owns the
//! SQLite file and records every device fetch through its store, so a set of
//! the ingested ids answers "never ingested" exactly, without a statement.
//!
//! Only a fingerprint of each (subscriber, request id) is kept, eight bytes:
//! two ids that share one cost a needless statement, never a wrong answer,
//! since a fingerprint found still goes to the table.

use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher, Hash, Hasher};
use std::sync::{PoisonError, RwLock};

#[derive(Default)]
pub(super) struct IngestedIds {
    fingerprints: RwLock<HashSet<u64>>,
}

/// One fixed hasher: the fingerprints of one process's life must agree.
fn fingerprint(subscriber_id: &str, request_id: &str) -> u64 {
    let mut hasher = BuildHasherDefault::<DefaultHasher>::default().build_hasher();
    subscriber_id.hash(&mut hasher);
    request_id.hash(&mut hasher);
    hasher.finish()
}

impl IngestedIds {
    /// Recorded before the job is committed: a set that holds more than the
    /// table costs a statement, one that holds less would lose a device.
    pub(super) fn insert(&self, subscriber_id: &str, request_id: &str) {
        self.fingerprints
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(fingerprint(subscriber_id, request_id));
    }

    /// `false` only when the request id was never ingested.
    pub(super) fn may_contain(&self, subscriber_id: &str, request_id: &str) -> bool {
        self.fingerprints
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&fingerprint(subscriber_id, request_id))
    }

    pub(super) fn rebuild(&self, ids: impl IntoIterator<Item = (String, String)>) {
        let set = ids
            .into_iter()
            .map(|(subscriber, request)| fingerprint(&subscriber, &request))
            .collect();
        *self
            .fingerprints
            .write()
            .unwrap_or_else(PoisonError::into_inner) = set;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_never_ingested_only_for_ids_it_was_never_given() {
        let ids = IngestedIds::default();
        ids.rebuild([("s1".to_owned(), "r1".to_owned())]);
        ids.insert("s1", "r2");
        assert!(ids.may_contain("s1", "r1"));
        assert!(ids.may_contain("s1", "r2"));
        assert!(!ids.may_contain("s1", "r3"));
        assert!(!ids.may_contain("s2", "r1"), "ids are per subscriber");
    }
}
