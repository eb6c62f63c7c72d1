//! Subscribers (the tenants), their API keys and provider credentials.

use async_trait::async_trait;
use serde::Serialize;

use super::{Actor, Millis, StoreResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SubscriberStatus {
    Active,
    Suspended,
}

impl SubscriberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "suspended" => Some(Self::Suspended),
            _ => None,
        }
    }
}

impl TryFrom<String> for SubscriberStatus {
    type Error = String;

    /// Decodes the stored text (rows decode through this).
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s).ok_or_else(|| format!("subscriber status {s:?}"))
    }
}

/// How a subscriber's callbacks are signed (Standard Webhooks versions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SigningScheme {
    /// HMAC-SHA256 with the shared `whsec_` secret.
    #[serde(rename = "v1")]
    V1,
    /// Ed25519: riskgate keeps the `whsk_` private key, the receiver verifies
    /// with the `whpk_` public key.
    #[serde(rename = "v1a")]
    V1a,
}

impl SigningScheme {
    pub const EXPECTED: &'static str = "v1 or v1a";

    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V1a => "v1a",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "v1" => Some(Self::V1),
            "v1a" => Some(Self::V1a),
            _ => None,
        }
    }
}

impl TryFrom<String> for SigningScheme {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s).ok_or_else(|| format!("signing scheme {s:?}"))
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SubscriberRow {
    pub id: String,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub status: SubscriberStatus,
    pub webhook_secret_sealed: String,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// The secret replaced by the last rotation, still accepted (signed with)
    /// until `previous_secret_expires_at`; see [`Subscribers::rotate_webhook_secret`].
    pub previous_webhook_secret_sealed: Option<String>,
    pub previous_secret_expires_at: Option<Millis>,
    #[sqlx(try_from = "String")]
    pub signing_scheme: SigningScheme,
    /// The sealed `whsk_` Ed25519 private key, from the first switch to `v1a`
    /// (or key rotation) on.
    pub signing_key_sealed: Option<String>,
    /// Its `whpk_` public key, in clear: it is no secret.
    pub signing_public_key: Option<String>,
    /// The key pair replaced by the last key rotation, still signing until
    /// `previous_signing_key_expires_at`.
    pub previous_signing_key_sealed: Option<String>,
    pub previous_signing_key_expires_at: Option<Millis>,
    /// Until when the scheme in force before the last change of
    /// `signing_scheme` still signs too, so receivers can switch over.
    pub previous_scheme_expires_at: Option<Millis>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub key_id: String,
    pub subscriber_id: String,
    pub name: Option<String>,
    pub key_hash: String,
    pub created_at: Millis,
    pub revoked_at: Option<Millis>,
}

/// What authenticating one API key needs, read in one query.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyAuthRow {
    pub key_hash: String,
    pub subscriber_id: String,
    pub revoked: bool,
    #[sqlx(try_from = "String")]
    pub subscriber_status: SubscriberStatus,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProviderCredentialRow {
    pub subscriber_id: String,
    pub provider: String,
    /// Encrypted JSON of the credentials (see `secrets::Sealer`).
    pub sealed: String,
    /// Non-secret settings (region, API version) as JSON, shown to operators.
    pub settings: String,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// Tenants and what authenticates and configures them.
#[async_trait]
pub trait Subscribers: Send + Sync {
    /// Fails with [`StoreError::Conflict`] when the id is taken.
    ///
    /// Every method here that changes something writes its audit entry, of
    /// `actor`, in the change's own transaction (see [`Audit`](super::Audit));
    /// a call that changes nothing writes none.
    async fn create_subscriber(&self, row: &SubscriberRow, actor: &Actor) -> StoreResult<()>;
    async fn get_subscriber(&self, id: &str) -> StoreResult<Option<SubscriberRow>>;
    async fn list_subscribers(&self) -> StoreResult<Vec<SubscriberRow>>;
    /// Changes name and/or status; `None` when the subscriber does not exist.
    async fn update_subscriber(
        &self,
        id: &str,
        name: Option<&str>,
        status: Option<SubscriberStatus>,
        actor: &Actor,
    ) -> StoreResult<Option<SubscriberRow>>;
    /// In one statement: the current webhook secret becomes the previous one
    /// (valid until `previous_expires_at`; an older previous secret is
    /// dropped) and `new_sealed` the current one. `None` for an unknown
    /// subscriber.
    async fn rotate_webhook_secret(
        &self,
        subscriber_id: &str,
        new_sealed: &str,
        previous_expires_at: Millis,
        actor: &Actor,
    ) -> StoreResult<Option<SubscriberRow>>;

    /// Sets the signing scheme. `new_key` (sealed private key, public key) is
    /// stored only when the subscriber has no key pair yet. When the scheme
    /// changes, the one before stays signing until `previous_scheme_expires_at`;
    /// setting the scheme in force changes nothing. `None` for an unknown
    /// subscriber.
    async fn set_signing_scheme(
        &self,
        subscriber_id: &str,
        scheme: SigningScheme,
        new_key: Option<(&str, &str)>,
        previous_scheme_expires_at: Millis,
        actor: &Actor,
    ) -> StoreResult<Option<SubscriberRow>>;
    /// Like [`Self::rotate_webhook_secret`], for the Ed25519 key pair: in one
    /// statement the current key becomes the previous one (valid until
    /// `previous_expires_at`) and the new one current.
    async fn rotate_signing_key(
        &self,
        subscriber_id: &str,
        new_sealed: &str,
        new_public_key: &str,
        previous_expires_at: Millis,
        actor: &Actor,
    ) -> StoreResult<Option<SubscriberRow>>;

    async fn create_api_key(&self, row: &ApiKeyRow, actor: &Actor) -> StoreResult<()>;
    async fn list_api_keys(&self, subscriber_id: &str) -> StoreResult<Vec<ApiKeyRow>>;
    /// Marks the key revoked (keeping the first revocation time); `None` if the
    /// subscriber has no such key.
    async fn revoke_api_key(
        &self,
        subscriber_id: &str,
        key_id: &str,
        actor: &Actor,
    ) -> StoreResult<Option<ApiKeyRow>>;
    async fn find_key_for_auth(&self, key_id: &str) -> StoreResult<Option<KeyAuthRow>>;

    /// Inserts or replaces one provider's credentials for a subscriber.
    /// Its audit entry shows the non-secret settings, never the secret.
    async fn put_provider_credentials(
        &self,
        row: &ProviderCredentialRow,
        actor: &Actor,
    ) -> StoreResult<()>;
    /// The subscriber's providers, first configured first.
    async fn list_provider_credentials(
        &self,
        subscriber_id: &str,
    ) -> StoreResult<Vec<ProviderCredentialRow>>;
}
