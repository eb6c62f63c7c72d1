//! End-customer profiles: counters, devices and cards per subscriber and user.

use async_trait::async_trait;
use serde::Serialize;

use super::{Actor, Millis, StoreResult};

/// What a subscriber says about one of its end customers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CustomerStatus {
    Normal,
    Trusted,
    Blocked,
}

impl CustomerStatus {
    pub const ALL: [CustomerStatus; 3] = [Self::Normal, Self::Trusted, Self::Blocked];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Trusted => "trusted",
            Self::Blocked => "blocked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }
}

impl TryFrom<String> for CustomerStatus {
    type Error = String;

    /// Decodes the stored text (rows decode through this).
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s).ok_or_else(|| format!("customer status {s:?}"))
    }
}

/// What a decision or an ingest tells us about an end customer.
#[derive(Debug, Clone, Default)]
pub struct CustomerTouch {
    pub user_id: String,
    /// A device seen for the customer (recorded in `customer_devices`).
    pub visitor_id: Option<String>,
    /// A card seen for the customer: (BIN, last four digits).
    pub card: Option<(String, String)>,
    /// A transaction amount; counted in the amount statistics when finite.
    pub amount: Option<f64>,
    /// `allow`, `review` or `block`: counted in `decisions_*`. Any other value,
    /// or `None`, counts no decision. [`Decisions::record_decision`] counts the
    /// decision's own `action` instead.
    pub action: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CustomerRow {
    pub subscriber_id: String,
    pub user_id: String,
    #[sqlx(try_from = "String")]
    pub status: CustomerStatus,
    pub first_seen: Millis,
    pub last_seen: Millis,
    pub decisions_allow: i64,
    pub decisions_review: i64,
    pub decisions_block: i64,
    pub amount_count: i64,
    pub amount_total: f64,
    pub amount_max: Option<f64>,
    pub fraud_labels: i64,
    pub status_updated_at: Option<Millis>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CustomerDevice {
    pub visitor_id: String,
    pub first_seen: Millis,
    pub last_seen: Millis,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CustomerCard {
    pub bin: String,
    pub last4: String,
    pub first_seen: Millis,
    pub last_seen: Millis,
}

/// Bound on the devices and cards listed in a [`CustomerProfile`].
pub const PROFILE_LIST_LIMIT: i64 = 100;

#[derive(Debug, Clone)]
pub struct CustomerProfile {
    pub customer: CustomerRow,
    /// Most recently seen first, at most [`PROFILE_LIST_LIMIT`].
    pub devices: Vec<CustomerDevice>,
    /// Most recently seen first, at most [`PROFILE_LIST_LIMIT`].
    pub cards: Vec<CustomerCard>,
    pub devices_total: i64,
    pub cards_total: i64,
}

/// What the scoring hot path reads about the customer: in one query, or on
/// SQLite from the store's in-memory copy.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct CustomerFeatures {
    #[sqlx(try_from = "String")]
    pub status: CustomerStatus,
    pub first_seen: Millis,
    pub last_seen: Millis,
    pub decisions_allow: i64,
    pub decisions_review: i64,
    pub decisions_block: i64,
    pub amount_count: i64,
    pub amount_total: f64,
    pub amount_max: Option<f64>,
    pub fraud_labels: i64,
    /// Distinct devices seen for the customer.
    pub devices: i64,
    /// Distinct cards seen for the customer.
    pub cards: i64,
    /// A visitor id was given and has been seen for this customer.
    pub known_device: bool,
    /// A card was given and has been seen for this customer.
    pub known_card: bool,
}

/// What riskgate learns about each subscriber's end customers.
#[async_trait]
pub trait Customers: Send + Sync {
    /// names one. Creates the customer when needed.
    async fn touch_customer(
        &self,
        subscriber_id: &str,
        touch: &CustomerTouch,
        at: Millis,
    ) -> StoreResult<()>;
    /// The customer with its most recently seen devices and cards.
    async fn get_customer(
        &self,
        subscriber_id: &str,
        user_id: &str,
    ) -> StoreResult<Option<CustomerProfile>>;
    /// Sets the customer's status, creating the customer (seen at `at`) if
    /// unknown; a change of status writes a `customer.status` audit entry of
    /// `actor` in the same transaction.
    async fn set_customer_status(
        &self,
        subscriber_id: &str,
        user_id: &str,
        status: CustomerStatus,
        at: Millis,
        actor: &Actor,
    ) -> StoreResult<CustomerRow>;
    /// The customer's scoring features in one statement (SQLite: no
    /// statement, from memory); whether the given device and card were seen
    /// for this customer before. `None` for an unknown customer.
    async fn customer_features(
        &self,
        subscriber_id: &str,
        user_id: &str,
        visitor_id: Option<&str>,
        card: Option<(&str, &str)>,
    ) -> StoreResult<Option<CustomerFeatures>>;
}
