//! Decisions counted per subscriber, hour and action as they are recorded:
//! what the console's overview charts. Counting a week of decisions row by
//! row grows with traffic; summing at most 168 hours per action does not.
//!
//! Each committer task adds to its own shard of a counter, so that the
//! batches of one process committing at once on PostgreSQL never wait on
//! one another's counter rows (another process's task of the same number
//! may, briefly); a read sums the shards.

use std::collections::BTreeMap;

use super::{Millis, NewDecision};

pub(super) const HOUR: Millis = 3_600_000;

/// What one batch adds to one counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HourCount<'a> {
    pub subscriber_id: &'a str,
    pub hour: Millis,
    pub action: &'a str,
    pub shard: i64,
    pub count: i64,
}

/// The batch's new decisions, counted per (subscriber, hour, action), in
/// key order: the order PostgreSQL takes the counters' row locks in.
pub(super) fn gather<'a>(decisions: &[&'a NewDecision], shard: i64) -> Vec<HourCount<'a>> {
    let mut counts: BTreeMap<(&str, Millis, &str), i64> = BTreeMap::new();
    for d in decisions {
        let hour = d.created_at.div_euclid(HOUR) * HOUR;
        *counts
            .entry((d.subscriber_id.as_str(), hour, d.action.as_str()))
            .or_default() += 1;
    }
    counts
        .into_iter()
        .map(|((subscriber_id, hour, action), count)| HourCount {
            subscriber_id,
            hour,
            action,
            shard,
            count,
        })
        .collect()
}
