//! What operators do to subscribers: create and suspend them, issue and revoke
//! their API keys, store their provider credentials and rule sets, inspect
//! their jobs. The HTTP operator API and the command line both call these
//! functions, so the two cannot disagree.

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::ServiceError;
use crate::callbacks::signing::new_signing_key;
use crate::decision::rules::{default_rule_set, RuleSet};
use crate::decision::scrub::{masked_id, scrub_str};
use crate::fields::{optional, optional_text, required_text, subscriber_id};
use crate::providers::{parse_credentials, Provider};
use crate::secrets::{new_api_key, new_webhook_secret, random_id, Sealer};
use crate::store::{
    now_millis, Actor, ApiKeyRow, JobFilter, JobRow, JobState, Millis, ProviderCredentialRow,
    SigningScheme, Store, StoreError, SubscriberRow, SubscriberStatus,
};

const NAME_MAX: usize = 200;

pub use crate::clock::rfc3339;

/// The sealing context of a subscriber's webhook secret.
pub fn webhook_secret_context(subscriber_id: &str) -> String {
    format!("subscriber:{subscriber_id}:webhook_secret")
}

/// The sealing context of a subscriber's `whsk_` Ed25519 private key (the
/// current and the previous one alike).
pub fn signing_key_context(subscriber_id: &str) -> String {
    format!("subscriber:{subscriber_id}:signing_key")
}

/// The sealing context of a subscriber's credentials for one provider.
pub fn credentials_context(subscriber_id: &str, provider: Provider) -> String {
    format!("subscriber:{subscriber_id}:provider:{}", provider.as_str())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriberView {
    pub id: String,
    pub name: String,
    #[schema(value_type = String, example = "active")]
    pub status: SubscriberStatus,
    /// Configured providers, first configured (the default) first.
    pub providers: Vec<Provider>,
    pub default_provider: Option<Provider>,
    pub created_at: String,
    pub updated_at: String,
    /// The Standard Webhooks signing secret; only in the response that created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
    /// How callbacks are signed: `v1` (HMAC-SHA256 with the `whsec_` secret)
    /// or `v1a` (Ed25519; receivers verify with `public_key`).
    #[schema(value_type = String, example = "v1a")]
    pub signing_scheme: SigningScheme,
    /// The `whpk_` Ed25519 public key that verifies `v1a` signatures; `null`
    /// until the subscriber has a key pair. The private key is never shown.
    pub public_key: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriberList {
    pub subscribers: Vec<SubscriberView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyCreated {
    pub key_id: String,
    /// The full key. Shown this once; riskgate keeps only its hash.
    pub api_key: String,
    pub subscriber_id: String,
    pub name: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    pub key_id: String,
    pub subscriber_id: String,
    pub name: Option<String>,
    /// `active` or `revoked`.
    pub status: &'static str,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    pub keys: Vec<ApiKeyView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderView {
    pub subscriber_id: String,
    pub provider: Provider,
    /// Non-secret settings (region, API version, Stytch project id).
    #[schema(value_type = Object)]
    pub settings: Value,
    /// Whether ingests without a `provider` use this one.
    pub is_default: bool,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RuleSetView {
    pub subscriber_id: String,
    /// The live version: 0 (the default pack) until one is published. Each
    /// `PUT` or draft adds a version; versions are never reused.
    pub version: i64,
    #[serde(flatten)]
    pub rule_set: RuleSet,
    pub updated_at: Option<String>,
    /// Rules that compile but fail or give no boolean on a sample transaction
    /// (often a misspelt feature name); they are stored all the same.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    pub id: String,
    pub kind: String,
    pub subscriber_id: String,
    /// What the job is about: for a device fetch, the provider's request id.
    pub key: String,
    #[schema(value_type = String, example = "pending")]
    pub state: JobState,
    pub attempts: i64,
    #[schema(value_type = Object)]
    pub payload: Value,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobList {
    pub jobs: Vec<JobView>,
}

impl From<&JobRow> for JobView {
    fn from(job: &JobRow) -> Self {
        Self {
            id: job.id.clone(),
            kind: job.kind.clone(),
            subscriber_id: job.subscriber_id.clone(),
            key: job.dedupe_key.clone(),
            state: job.state,
            attempts: job.attempts,
            payload: serde_json::from_str(&job.payload).unwrap_or(Value::Null),
            last_error: job.last_error.clone(),
            created_at: rfc3339(job.created_at),
            updated_at: rfc3339(job.updated_at),
            finished_at: job.finished_at.map(rfc3339),
        }
    }
}

fn key_view(row: &ApiKeyRow) -> ApiKeyView {
    ApiKeyView {
        key_id: row.key_id.clone(),
        subscriber_id: row.subscriber_id.clone(),
        name: row.name.clone(),
        status: if row.revoked_at.is_some() {
            "revoked"
        } else {
            "active"
        },
        created_at: rfc3339(row.created_at),
        revoked_at: row.revoked_at.map(rfc3339),
    }
}

fn not_found(id: &str) -> ServiceError {
    ServiceError::not_found(format!("Subscriber '{id}' not found"))
}

/// The subscriber's providers, in the order they were first configured.
pub async fn configured_providers(
    store: &dyn Store,
    subscriber_id: &str,
) -> Result<Vec<(Provider, ProviderCredentialRow)>, ServiceError> {
    let rows = store.list_provider_credentials(subscriber_id).await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| Provider::parse(&row.provider).map(|p| (p, row)))
        .collect())
}

async fn view(store: &dyn Store, row: SubscriberRow) -> Result<SubscriberView, ServiceError> {
    let providers: Vec<Provider> = configured_providers(store, &row.id)
        .await?
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    Ok(SubscriberView {
        default_provider: providers.first().copied(),
        providers,
        id: row.id,
        name: row.name,
        status: row.status,
        created_at: rfc3339(row.created_at),
        updated_at: rfc3339(row.updated_at),
        webhook_secret: None,
        signing_scheme: row.signing_scheme,
        public_key: row.signing_public_key,
    })
}

pub(crate) async fn existing(store: &dyn Store, id: &str) -> Result<SubscriberRow, ServiceError> {
    store.get_subscriber(id).await?.ok_or_else(|| not_found(id))
}

pub async fn create_subscriber(
    store: &dyn Store,
    sealer: &Sealer,
    body: &Map<String, Value>,
    actor: &Actor,
) -> Result<SubscriberView, ServiceError> {
    let name = masked_id(required_text(body, "name", NAME_MAX)?);
    let id = match optional(body, "id") {
        Some(value) => subscriber_id(value, "id")?,
        None => format!("sub_{}", random_id(16)),
    };
    // An id is stored, logged and part of every cache key; masking it would
    // leave `*`, which an id may not hold.
    if scrub_str(&id).is_some() {
        return Err(ServiceError::invalid("id", "must not be a card number"));
    }
    let scheme = optional(body, "signing_scheme")
        .map(parse_signing_scheme)
        .transpose()?
        .unwrap_or(SigningScheme::V1);
    // Every subscriber has a `whsec_` secret, so switching to `v1` later needs
    // no new one; the key pair is made only for `v1a`.
    let key = (scheme == SigningScheme::V1a).then(new_signing_key);
    let secret = new_webhook_secret();
    let now = now_millis();
    let row = SubscriberRow {
        signing_scheme: scheme,
        signing_key_sealed: key
            .as_ref()
            .map(|k| sealer.seal(&k.private_key, &signing_key_context(&id))),
        signing_public_key: key.map(|k| k.public_key),
        previous_signing_key_sealed: None,
        previous_signing_key_expires_at: None,
        previous_scheme_expires_at: None,
        webhook_secret_sealed: sealer.seal(&secret, &webhook_secret_context(&id)),
        id: id.clone(),
        name: name.into_owned(),
        status: SubscriberStatus::Active,
        created_at: now,
        updated_at: now,
        previous_webhook_secret_sealed: None,
        previous_secret_expires_at: None,
    };
    match store.create_subscriber(&row, actor).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(ServiceError::conflict(format!(
                "Subscriber '{id}' already exists"
            )))
        }
        Err(err) => return Err(err.into()),
    }
    tracing::info!(subscriber_id = %id, "subscriber created");
    let mut created = view(store, row).await?;
    created.webhook_secret = Some(secret);
    Ok(created)
}

pub async fn list_subscribers(store: &dyn Store) -> Result<SubscriberList, ServiceError> {
    let mut subscribers = Vec::new();
    for row in store.list_subscribers().await? {
        subscribers.push(view(store, row).await?);
    }
    Ok(SubscriberList { subscribers })
}

pub async fn get_subscriber(store: &dyn Store, id: &str) -> Result<SubscriberView, ServiceError> {
    view(store, existing(store, id).await?).await
}

pub async fn update_subscriber(
    store: &dyn Store,
    id: &str,
    body: &Map<String, Value>,
    actor: &Actor,
) -> Result<SubscriberView, ServiceError> {
    let name = optional_text(body, "name", NAME_MAX)?;
    let status = optional_text(body, "status", 16)?
        .map(|s| {
            SubscriberStatus::parse(s)
                .ok_or_else(|| ServiceError::invalid("status", "expected active or suspended"))
        })
        .transpose()?;
    if name.is_none() && status.is_none() {
        return Err(ServiceError::bad_request(
            "Request body must contain 'name' or 'status'",
        ));
    }
    set_subscriber(store, id, name, status, actor).await
}

pub async fn set_subscriber(
    store: &dyn Store,
    id: &str,
    name: Option<&str>,
    status: Option<SubscriberStatus>,
    actor: &Actor,
) -> Result<SubscriberView, ServiceError> {
    // Names are shown to operators and stored: a card number in one is masked
    // like anywhere else.
    let name = name.map(masked_id);
    let row = store
        .update_subscriber(id, name.as_deref(), status, actor)
        .await?
        .ok_or_else(|| not_found(id))?;
    if let Some(status) = status {
        tracing::info!(subscriber_id = %id, status = status.as_str(), "subscriber status set");
    }
    view(store, row).await
}

pub async fn create_key(
    store: &dyn Store,
    subscriber_id: &str,
    name: Option<&str>,
    actor: &Actor,
) -> Result<ApiKeyCreated, ServiceError> {
    existing(store, subscriber_id).await?;
    let key = new_api_key();
    let row = ApiKeyRow {
        key_id: key.key_id.clone(),
        subscriber_id: subscriber_id.to_owned(),
        name: name.map(|n| masked_id(n).into_owned()),
        key_hash: key.hash,
        created_at: now_millis(),
        revoked_at: None,
    };
    store.create_api_key(&row, actor).await?;
    tracing::info!(%subscriber_id, key_id = %row.key_id, "api key created");
    Ok(ApiKeyCreated {
        key_id: key.key_id,
        api_key: key.api_key,
        subscriber_id: subscriber_id.to_owned(),
        name: row.name,
        created_at: rfc3339(row.created_at),
    })
}

pub fn key_name(body: &Map<String, Value>) -> Result<Option<&str>, ServiceError> {
    Ok(optional_text(body, "name", NAME_MAX)?)
}

pub async fn list_keys(store: &dyn Store, subscriber_id: &str) -> Result<ApiKeyList, ServiceError> {
    existing(store, subscriber_id).await?;
    let keys = store
        .list_api_keys(subscriber_id)
        .await?
        .iter()
        .map(key_view)
        .collect();
    Ok(ApiKeyList { keys })
}

pub async fn revoke_key(
    store: &dyn Store,
    subscriber_id: &str,
    key_id: &str,
    actor: &Actor,
) -> Result<ApiKeyView, ServiceError> {
    existing(store, subscriber_id).await?;
    let row = store
        .revoke_api_key(subscriber_id, key_id, actor)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("API key '{key_id}' not found")))?;
    tracing::info!(%subscriber_id, %key_id, "api key revoked");
    Ok(key_view(&row))
}

pub fn parse_provider(name: &str) -> Result<Provider, ServiceError> {
    Provider::parse(name).ok_or_else(|| {
        ServiceError::not_found(format!(
            "Unknown provider '{name}': expected {}",
            Provider::EXPECTED
        ))
    })
}

pub async fn put_provider(
    store: &dyn Store,
    sealer: &Sealer,
    subscriber_id: &str,
    provider: Provider,
    body: &Map<String, Value>,
    actor: &Actor,
) -> Result<ProviderView, ServiceError> {
    existing(store, subscriber_id).await?;
    let parsed = parse_credentials(provider, body).map_err(|e| ServiceError::bad_request(e.0))?;
    let now = now_millis();
    let row = ProviderCredentialRow {
        subscriber_id: subscriber_id.to_owned(),
        provider: provider.as_str().to_owned(),
        sealed: sealer.seal(
            &parsed.secret,
            &credentials_context(subscriber_id, provider),
        ),
        settings: parsed.settings.to_string(),
        created_at: now,
        updated_at: now,
    };
    store.put_provider_credentials(&row, actor).await?;
    tracing::info!(%subscriber_id, provider = provider.as_str(), "provider credentials stored");
    let configured = configured_providers(store, subscriber_id).await?;
    let position = configured.iter().position(|(p, _)| *p == provider);
    let (_, stored) = position
        .map(|i| &configured[i])
        .ok_or_else(|| StoreError::Corrupt("credentials vanished after write".into()))?;
    Ok(ProviderView {
        subscriber_id: subscriber_id.to_owned(),
        provider,
        settings: parsed.settings,
        is_default: position == Some(0),
        created_at: rfc3339(stored.created_at),
        updated_at: rfc3339(stored.updated_at),
    })
}

pub async fn get_rules(
    store: &dyn Store,
    subscriber_id: &str,
) -> Result<RuleSetView, ServiceError> {
    existing(store, subscriber_id).await?;
    match store.current_rule_set(subscriber_id).await? {
        Some(row) => {
            let rule_set: RuleSet = serde_json::from_str(&row.body)
                .map_err(|e| StoreError::Corrupt(format!("rule set: {e}")))?;
            Ok(RuleSetView {
                subscriber_id: row.subscriber_id,
                version: row.version,
                rule_set,
                updated_at: Some(rfc3339(row.created_at)),
                warnings: Vec::new(),
            })
        }
        None => Ok(RuleSetView {
            subscriber_id: subscriber_id.to_owned(),
            version: 0,
            rule_set: default_rule_set()
                .map_err(|_| ServiceError::internal("operator"))?
                .clone(),
            updated_at: None,
            warnings: Vec::new(),
        }),
    }
}

pub async fn list_jobs(store: &dyn Store, filter: &JobFilter) -> Result<JobList, ServiceError> {
    if let Some(id) = &filter.subscriber_id {
        existing(store, id).await?;
    }
    let jobs = store
        .list_jobs(filter)
        .await?
        .iter()
        .map(JobView::from)
        .collect();
    Ok(JobList { jobs })
}

/// The answer to a secret rotation: the new secret, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedSecret {
    pub subscriber_id: String,
    /// The new `whsec_…` signing secret.
    pub webhook_secret: String,
    /// Until when callbacks also carry a signature with the previous secret.
    pub previous_valid_until: String,
}

/// The longest grace period a rotated secret may keep.
pub const MAX_SECRET_GRACE: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// Rotates the subscriber's webhook signing secret. For `grace`, callbacks
/// carry two signatures (new and previous), so receivers can switch over.
pub async fn rotate_secret(
    store: &dyn Store,
    sealer: &Sealer,
    subscriber_id: &str,
    grace: std::time::Duration,
    actor: &Actor,
) -> Result<RotatedSecret, ServiceError> {
    if grace > MAX_SECRET_GRACE {
        return Err(ServiceError::invalid(
            "grace_period_seconds",
            "must be at most 2592000 (30 days)",
        ));
    }
    existing(store, subscriber_id).await?;
    let secret = new_webhook_secret();
    let sealed = sealer.seal(&secret, &webhook_secret_context(subscriber_id));
    let until = now_millis() + i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
    store
        .rotate_webhook_secret(subscriber_id, &sealed, until, actor)
        .await?
        .ok_or_else(|| {
            ServiceError::not_found(format!("Subscriber '{subscriber_id}' not found"))
        })?;
    tracing::info!(%subscriber_id, "webhook secret rotated");
    Ok(RotatedSecret {
        subscriber_id: subscriber_id.to_owned(),
        webhook_secret: secret,
        previous_valid_until: rfc3339(until),
    })
}

/// `v1` or `v1a`, from a request field `signing_scheme`.
pub fn parse_signing_scheme(value: &Value) -> Result<SigningScheme, ServiceError> {
    value
        .as_str()
        .and_then(SigningScheme::parse)
        .ok_or_else(|| ServiceError::invalid("signing_scheme", "expected v1 or v1a"))
}

fn check_grace(grace: std::time::Duration) -> Result<Millis, ServiceError> {
    if grace > MAX_SECRET_GRACE {
        return Err(ServiceError::invalid(
            "grace_period_seconds",
            "must be at most 2592000 (30 days)",
        ));
    }
    Ok(now_millis() + i64::try_from(grace.as_millis()).unwrap_or(i64::MAX))
}

/// The answer to a change of signing scheme.
#[derive(Debug, Serialize, ToSchema)]
pub struct SigningSchemeSet {
    pub subscriber_id: String,
    #[schema(value_type = String, example = "v1a")]
    pub signing_scheme: SigningScheme,
    /// The `whpk_` public key that verifies `v1a` signatures (`null` while
    /// the subscriber never had a key pair).
    pub public_key: Option<String>,
    /// The scheme before the change, while it still signs too; else `null`.
    #[schema(value_type = Option<String>, example = "v1")]
    pub previous_scheme: Option<SigningScheme>,
    /// Until when callbacks also carry a signature of `previous_scheme`.
    pub previous_scheme_valid_until: Option<String>,
}

fn other_scheme(scheme: SigningScheme) -> SigningScheme {
    match scheme {
        SigningScheme::V1 => SigningScheme::V1a,
        SigningScheme::V1a => SigningScheme::V1,
    }
}

/// Sets how the subscriber's callbacks are signed. Switching to `v1a` the
/// first time makes its Ed25519 key pair. For `grace` after a change, the
/// scheme before keeps signing too (`v1,… v1a,…`), so the receiver can move
/// from the secret to the public key (or back) without refusing a callback.
pub async fn set_signing_scheme(
    store: &dyn Store,
    sealer: &Sealer,
    subscriber_id: &str,
    scheme: SigningScheme,
    grace: std::time::Duration,
    actor: &Actor,
) -> Result<SigningSchemeSet, ServiceError> {
    let until = check_grace(grace)?;
    let before = existing(store, subscriber_id).await?;
    let key =
        (scheme == SigningScheme::V1a && before.signing_key_sealed.is_none()).then(new_signing_key);
    let sealed = key
        .as_ref()
        .map(|k| sealer.seal(&k.private_key, &signing_key_context(subscriber_id)));
    let new_key = sealed
        .as_deref()
        .zip(key.as_ref().map(|k| k.public_key.as_str()));
    let row = store
        .set_signing_scheme(subscriber_id, scheme, new_key, until, actor)
        .await?
        .ok_or_else(|| not_found(subscriber_id))?;
    if before.signing_scheme != row.signing_scheme {
        tracing::info!(%subscriber_id, scheme = scheme.as_str(), "signing scheme set");
    }
    let previous_until = row
        .previous_scheme_expires_at
        .filter(|until| *until > now_millis());
    Ok(SigningSchemeSet {
        subscriber_id: row.id,
        signing_scheme: row.signing_scheme,
        public_key: row.signing_public_key,
        previous_scheme: previous_until.map(|_| other_scheme(row.signing_scheme)),
        previous_scheme_valid_until: previous_until.map(rfc3339),
    })
}

/// The answer to a rotation of the Ed25519 key pair.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedSigningKey {
    pub subscriber_id: String,
    /// The new `whpk_` public key. The private key is never shown.
    pub public_key: String,
    /// Until when callbacks also carry a `v1a` signature with the previous
    /// key; `null` when there was none.
    pub previous_valid_until: Option<String>,
}

/// Replaces the subscriber's Ed25519 key pair. For `grace`, `v1a` callbacks
/// carry two signatures (new and previous key). A subscriber on `v1` may
/// rotate too, to learn its public key before switching.
pub async fn rotate_signing_key(
    store: &dyn Store,
    sealer: &Sealer,
    subscriber_id: &str,
    grace: std::time::Duration,
    actor: &Actor,
) -> Result<RotatedSigningKey, ServiceError> {
    let until = check_grace(grace)?;
    existing(store, subscriber_id).await?;
    let key = new_signing_key();
    let sealed = sealer.seal(&key.private_key, &signing_key_context(subscriber_id));
    let row = store
        .rotate_signing_key(subscriber_id, &sealed, &key.public_key, until, actor)
        .await?
        .ok_or_else(|| not_found(subscriber_id))?;
    tracing::info!(%subscriber_id, "signing key rotated");
    Ok(RotatedSigningKey {
        subscriber_id: subscriber_id.to_owned(),
        public_key: key.public_key,
        previous_valid_until: row.previous_signing_key_expires_at.map(rfc3339),
    })
}

/// The answer to a callback retry.
#[derive(Debug, Serialize, ToSchema)]
pub struct RetriedCallback {
    pub decision_id: String,
    /// `queued`.
    pub status: &'static str,
}

/// Sends a failed callback again (from its first retry step).
pub async fn retry_callback(
    store: &dyn Store,
    subscriber_id: &str,
    decision_id: &str,
) -> Result<RetriedCallback, ServiceError> {
    existing(store, subscriber_id).await?;
    match store
        .requeue_failed_job(
            crate::store::JobKind::DecisionCallback.as_str(),
            subscriber_id,
            decision_id,
            now_millis(),
        )
        .await?
    {
        crate::store::Requeued::Requeued(_) => Ok(RetriedCallback {
            decision_id: decision_id.to_owned(),
            status: "queued",
        }),
        crate::store::Requeued::NotFailed(job) => Err(ServiceError::conflict(format!(
            "The callback of '{decision_id}' is {}, not failed",
            job.state.as_str()
        ))),
        crate::store::Requeued::Missing => Err(ServiceError::not_found(format!(
            "No callback for decision '{decision_id}'"
        ))),
    }
}
