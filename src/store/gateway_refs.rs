//! The gateway references of scored payments (Stripe charge and payment
//! intent ids, Adyen pspReference and merchantReference, the merchant's
//! `external_transaction_number`), so that a dispute or fraud report the
//! gateway sends later finds the decision made for that payment.
//!
//! They are written with the decision, in the group commit's transaction:
//! one multi-row upsert per batch (see [`group_commit`](super::group_commit)).
//! A reference names one decision per subscriber; a later payment with the
//! same reference (an order retried after a decline) takes it over, so a
//! dispute finds the payment that went through.

use async_trait::async_trait;

use super::{DecisionRow, StoreResult};

/// Finding a decision by a payment reference.
#[async_trait]
pub trait GatewayRefs: Send + Sync {
    /// The subscriber's decision recorded under the first of `references`
    /// that names one (most specific first); `None` when none does.
    async fn decision_by_reference(
        &self,
        subscriber_id: &str,
        references: &[String],
    ) -> StoreResult<Option<DecisionRow>>;
}

/// One row to record: (subscriber, reference, decision).
pub(super) type RefRow<'a> = (&'a str, &'a str, &'a str);

/// The batch's references, each (subscriber, reference) once — PostgreSQL
/// refuses an upsert that touches a row twice — kept for the latest decision
/// that names it, and in key order: batches committing at once take their
/// row locks in one order.
pub(super) fn distinct_refs<'a>(
    decisions: impl Iterator<Item = &'a super::NewDecision>,
) -> Vec<RefRow<'a>> {
    let mut latest: std::collections::BTreeMap<(&str, &str), (super::Millis, &str)> =
        std::collections::BTreeMap::new();
    for d in decisions {
        for reference in &d.references {
            let key = (d.subscriber_id.as_str(), reference.as_str());
            match latest.get(&key) {
                Some((at, _)) if *at > d.created_at => {}
                _ => {
                    latest.insert(key, (d.created_at, d.id.as_str()));
                }
            }
        }
    }
    latest
        .into_iter()
        .map(|((subscriber, reference), (_, decision))| (subscriber, reference, decision))
        .collect()
}

/// The reference queries, compiled against each backend's driver (see
/// [`store_impls`](super::shared)); also defines `insert_refs_on`, which the
/// group commit calls in each batch's transaction.
macro_rules! gateway_refs_impls {
    ($store:ident, $db:ty, $conn:ty) => {
        /// Upserts the batch's references (distinct, in key order),
        /// `ROWS_PER_STATEMENT` to a statement: one for a usual batch.
        pub(super) async fn insert_refs_on(
            conn: &mut $conn,
            refs: &[$crate::store::gateway_refs::RefRow<'_>],
        ) -> $crate::store::StoreResult<()> {
            for chunk in refs.chunks($crate::store::shared::ROWS_PER_STATEMENT) {
                let sql = format!(
                    "INSERT INTO gateway_refs (subscriber_id, reference, decision_id) VALUES {} \
                     ON CONFLICT (subscriber_id, reference) \
                     DO UPDATE SET decision_id = excluded.decision_id",
                    $crate::store::shared::values(chunk.len(), 3)
                );
                let mut query = sqlx::query(&sql);
                for (subscriber, reference, decision) in chunk {
                    query = query.bind(*subscriber).bind(*reference).bind(*decision);
                }
                query.execute(&mut *conn).await.map_err(db_err)?;
            }
            Ok(())
        }

        #[async_trait::async_trait]
        impl $crate::store::GatewayRefs for $store {
            async fn decision_by_reference(
                &self,
                subscriber_id: &str,
                references: &[String],
            ) -> $crate::store::StoreResult<Option<$crate::store::DecisionRow>> {
                for reference in references {
                    let record: Option<$crate::store::shared::DecisionRecord> =
                        sqlx::query_as(&format!(
                            "SELECT {} FROM decisions WHERE subscriber_id = $1 AND id = \
                             (SELECT decision_id FROM gateway_refs \
                              WHERE subscriber_id = $1 AND reference = $2)",
                            $crate::store::shared::DECISION_COLUMNS
                        ))
                        .bind(subscriber_id)
                        .bind(reference)
                        .fetch_optional(self.reads())
                        .await
                        .map_err(db_err)?;
                    if let Some(record) = record {
                        return $crate::store::DecisionRow::try_from(record).map(Some);
                    }
                }
                Ok(None)
            }
        }
    };
}

pub(super) use gateway_refs_impls;
