//! The analyst console's business: its users (created by the operator),
//! signing in with a password or the admin token, sessions, and the data its
//! pages show, always scoped to the session's subscriber.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::{ServiceError, ServiceResult};
use crate::clock::rfc3339;
use crate::fields::{optional, required};
use crate::secrets::{random_id, sha256_hex};
use crate::service::auth::AdminAuth;
use crate::store::{now_millis, Actor, ConsoleSession, ConsoleUser, Millis, Store};

/// A session ends this long after sign-in, however busy.
pub const SESSION_ABSOLUTE: Duration = Duration::from_secs(12 * 3600);
/// … or this long after its last request.
pub const SESSION_IDLE: Duration = Duration::from_secs(2 * 3600);
/// A session's last-seen time is written at most this often.
const TOUCH_EVERY: Millis = 60_000;

pub const PASSWORD_MIN: usize = 12;
pub const PASSWORD_MAX: usize = 256;
pub const EMAIL_MAX: usize = 254;

/// Failed sign-ins allowed per account, and per client address, within
/// [`THROTTLE_WINDOW`]; past that, sign-in answers "try later" without
/// checking the password.
pub const ACCOUNT_FAILURES: u32 = 5;
pub const ADDRESS_FAILURES: u32 = 20;
pub const THROTTLE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Argon2id with OWASP's first recommended setting (19 MiB, 2 passes, one
/// lane): ~20 ms optimised on one core, which a sign-in can afford and a
/// password-guessing GPU cannot multiply cheaply.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The password's Argon2id PHC string, computed off the async threads.
pub async fn hash_password(password: &str) -> ServiceResult<String> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|_| ServiceError::internal("password hash"))
    })
    .await
    .map_err(|_| ServiceError::internal("password hash task"))?
}

/// Whether the password matches the stored hash (its own parameters).
pub async fn verify_password(password: &str, stored: &str) -> bool {
    let (password, stored) = (password.to_owned(), stored.to_owned());
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored)
            .map(|hash| argon2().verify_password(password.as_bytes(), &hash).is_ok())
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// A hash no password matches, checked when the email is unknown so that an
/// unknown and a known account take the same time to refuse.
static DUMMY_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

async fn dummy_hash() -> String {
    if let Some(hash) = DUMMY_HASH.get() {
        return hash.clone();
    }
    let hash = hash_password(&random_id(24)).await.unwrap_or_default();
    DUMMY_HASH.get_or_init(|| hash).clone()
}

/// Failed sign-ins per key (an account, an address) in fixed windows, in
/// this process.
#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, (Instant, u32)>>,
}

impl LoginThrottle {
    fn count(&self, key: &str) -> u32 {
        let map = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match map.get(key) {
            Some((start, n)) if start.elapsed() < THROTTLE_WINDOW => *n,
            _ => 0,
        }
    }

    /// Seconds until a sign-in may be tried again, if the account or the
    /// address is over its limit.
    pub fn blocked(&self, account: &str, address: &str) -> Option<u64> {
        let over = self.count(&format!("a:{account}")) >= ACCOUNT_FAILURES
            || self.count(&format!("ip:{address}")) >= ADDRESS_FAILURES;
        over.then_some(THROTTLE_WINDOW.as_secs())
    }

    pub fn fail(&self, account: &str, address: &str) {
        let mut map = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Bounded: a flood of addresses forgets the oldest windows first.
        if map.len() > 100_000 {
            map.retain(|_, (start, _)| start.elapsed() < THROTTLE_WINDOW);
        }
        for key in [format!("a:{account}"), format!("ip:{address}")] {
            let entry = map.entry(key).or_insert((Instant::now(), 0));
            if entry.0.elapsed() >= THROTTLE_WINDOW {
                *entry = (Instant::now(), 0);
            }
            entry.1 += 1;
        }
    }

    pub fn succeed(&self, account: &str) {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&format!("a:{account}"));
    }
}

/// A console user as the operator reads it (never the hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsoleUserView {
    pub id: String,
    pub subscriber_id: String,
    pub email: String,
    /// `analyst` or `admin`.
    #[schema(example = "analyst")]
    pub role: String,
    /// `active` or `disabled`.
    #[schema(example = "active")]
    pub status: String,
    pub created_at: String,
    pub last_sign_in_at: Option<String>,
}

impl From<&ConsoleUser> for ConsoleUserView {
    fn from(u: &ConsoleUser) -> Self {
        Self {
            id: u.id.clone(),
            subscriber_id: u.subscriber_id.clone(),
            email: u.email.clone(),
            role: u.role.clone(),
            status: u.status.clone(),
            created_at: rfc3339(u.created_at),
            last_sign_in_at: u.last_sign_in_at.map(rfc3339),
        }
    }
}

/// The `201` of a user's creation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsoleUserCreated {
    pub user: ConsoleUserView,
    /// The generated initial password, shown this once; absent when the
    /// request gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsoleUserList {
    pub users: Vec<ConsoleUserView>,
}

/// An email as stored: one `@` between non-empty parts, no spaces or
/// control characters, lower case.
pub fn normalize_email(value: &Value) -> ServiceResult<String> {
    let invalid = || {
        ServiceError::invalid(
            "email",
            "expected an address like name@example.com (at most 254 characters)",
        )
    };
    let text = value.as_str().ok_or_else(invalid)?;
    if text.chars().count() > EMAIL_MAX
        || text
            .chars()
            .any(|c| c <= ' ' || ('\u{7f}'..='\u{9f}').contains(&c))
    {
        return Err(invalid());
    }
    let (local, domain) = text.split_once('@').ok_or_else(invalid)?;
    if local.is_empty() || domain.is_empty() || domain.contains('@') {
        return Err(invalid());
    }
    Ok(text.to_lowercase())
}

fn role(value: &Value) -> ServiceResult<&'static str> {
    match value.as_str() {
        Some("analyst") => Ok("analyst"),
        Some("admin") => Ok("admin"),
        _ => Err(ServiceError::invalid("role", "expected analyst or admin")),
    }
}

fn password(value: &Value) -> ServiceResult<&str> {
    let text = value.as_str().unwrap_or_default();
    let n = text.chars().count();
    if !value.is_string() || !(PASSWORD_MIN..=PASSWORD_MAX).contains(&n) {
        return Err(ServiceError::invalid(
            "password",
            "expected a string of 12 to 256 characters",
        ));
    }
    Ok(text)
}

/// Creates a console user of the subscriber; without a `password`, one is
/// generated and returned once.
pub async fn create_user(
    store: &dyn Store,
    subscriber_id: &str,
    body: &Map<String, Value>,
    actor: &Actor,
) -> ServiceResult<ConsoleUserCreated> {
    super::operator::existing(store, subscriber_id).await?;
    let email = normalize_email(required(body, "email")?)?;
    let role = role(required(body, "role")?)?;
    let given = optional(body, "password").map(password).transpose()?;
    let generated = given.is_none().then(|| random_id(20));
    let secret = given.or(generated.as_deref()).unwrap_or_default();
    let now = now_millis();
    let user = ConsoleUser {
        id: format!("usr_{}", random_id(16)),
        subscriber_id: subscriber_id.to_owned(),
        email,
        role: role.to_owned(),
        status: "active".to_owned(),
        password_hash: hash_password(secret).await?,
        created_at: now,
        updated_at: now,
        last_sign_in_at: None,
    };
    let user = store
        .create_console_user(&user, actor)
        .await
        .map_err(|err| match err {
            crate::store::StoreError::Conflict(_) => {
                ServiceError::conflict("A console user with this email exists")
            }
            other => other.into(),
        })?;
    Ok(ConsoleUserCreated {
        user: (&user).into(),
        password: generated,
    })
}

pub async fn list_users(store: &dyn Store, subscriber_id: &str) -> ServiceResult<ConsoleUserList> {
    super::operator::existing(store, subscriber_id).await?;
    let users = store.console_users(subscriber_id).await?;
    Ok(ConsoleUserList {
        users: users.iter().map(Into::into).collect(),
    })
}

/// `{"status": "active" | "disabled"}`; disabling signs the user out.
pub async fn set_user_status(
    store: &dyn Store,
    subscriber_id: &str,
    user_id: &str,
    body: &Map<String, Value>,
    actor: &Actor,
) -> ServiceResult<ConsoleUserView> {
    super::operator::existing(store, subscriber_id).await?;
    let status = match required(body, "status")?.as_str() {
        Some(s @ ("active" | "disabled")) => s,
        _ => {
            return Err(ServiceError::invalid(
                "status",
                "expected active or disabled",
            ))
        }
    };
    let user = store
        .set_console_user_status(subscriber_id, user_id, status, now_millis(), actor)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("Console user '{user_id}' not found")))?;
    Ok((&user).into())
}

/// Who a session is, as the console's pages check it.
#[derive(Debug, Clone)]
pub struct Principal {
    pub token_hash: String,
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub subscriber_id: Option<String>,
    /// `analyst`, `admin` or `operator`.
    pub role: String,
    pub csrf_token: String,
}

impl Principal {
    pub fn is_operator(&self) -> bool {
        self.role == "operator"
    }

    /// Admins and the operator may do the admin actions.
    pub fn is_admin(&self) -> bool {
        matches!(self.role.as_str(), "admin" | "operator")
    }

    /// Who the audit log says made a change.
    pub fn actor(&self) -> Actor {
        match &self.user_id {
            Some(id) => Actor::User(id.clone()),
            None => Actor::Operator,
        }
    }
}

/// Why a sign-in was refused (one message for a wrong email and a wrong
/// password: the form does not tell which accounts exist).
#[derive(Debug)]
pub enum SignInError {
    Invalid,
    Throttled(u64),
    Failed(ServiceError),
}

impl From<ServiceError> for SignInError {
    fn from(err: ServiceError) -> Self {
        Self::Failed(err)
    }
}

impl From<crate::store::StoreError> for SignInError {
    fn from(err: crate::store::StoreError) -> Self {
        Self::Failed(err.into())
    }
}

/// A new session's cookie token (shown to the browser only).
pub struct SignedIn {
    pub token: String,
}

async fn open_session(
    store: &dyn Store,
    user_id: Option<String>,
    subscriber_id: Option<String>,
    role: &str,
) -> ServiceResult<SignedIn> {
    let token = format!("rgs_{}", random_id(43));
    let now = now_millis();
    store
        .create_console_session(&ConsoleSession {
            token_hash: sha256_hex(&token),
            user_id,
            subscriber_id,
            role: role.to_owned(),
            csrf_token: random_id(32),
            created_at: now,
            last_seen_at: now,
            expires_at: now + crate::store::duration_millis(SESSION_ABSOLUTE),
        })
        .await?;
    Ok(SignedIn { token })
}

/// Signs a console user in with email and password.
pub async fn sign_in_user(
    store: &dyn Store,
    throttle: &LoginThrottle,
    email: &str,
    password: &str,
    address: &str,
) -> Result<SignedIn, SignInError> {
    let email = email.trim().to_lowercase();
    if let Some(wait) = throttle.blocked(&email, address) {
        return Err(SignInError::Throttled(wait));
    }
    let user = store.console_user_by_email(&email).await?;
    let hash = match &user {
        Some(user) => user.password_hash.clone(),
        None => dummy_hash().await,
    };
    let matches = verify_password(password, &hash).await;
    let user = match user {
        Some(user) if matches && user.status == "active" => user,
        _ => {
            throttle.fail(&email, address);
            return Err(SignInError::Invalid);
        }
    };
    let subscriber = store.get_subscriber(&user.subscriber_id).await?;
    if !subscriber.is_some_and(|s| s.status == crate::store::SubscriberStatus::Active) {
        throttle.fail(&email, address);
        return Err(SignInError::Invalid);
    }
    throttle.succeed(&email);
    store.record_console_sign_in(&user.id, now_millis()).await?;
    Ok(open_session(
        store,
        Some(user.id.clone()),
        Some(user.subscriber_id.clone()),
        &user.role,
    )
    .await?)
}

/// Signs the operator in with the admin token.
pub async fn sign_in_operator(
    store: &dyn Store,
    admin: &AdminAuth,
    throttle: &LoginThrottle,
    token: &str,
    address: &str,
) -> Result<SignedIn, SignInError> {
    const ACCOUNT: &str = "operator";
    if let Some(wait) = throttle.blocked(ACCOUNT, address) {
        return Err(SignInError::Throttled(wait));
    }
    if !admin.verify(store, token.trim()).await? {
        throttle.fail(ACCOUNT, address);
        return Err(SignInError::Invalid);
    }
    throttle.succeed(ACCOUNT);
    Ok(open_session(store, None, None, "operator").await?)
}

/// The session a cookie token names, if it is live; its last-seen time is
/// moved on (at most once a minute) and its user must still be active.
pub async fn session(store: &dyn Store, token: &str) -> ServiceResult<Option<Principal>> {
    if !token.starts_with("rgs_") || token.len() > 64 {
        return Ok(None);
    }
    let hash = sha256_hex(token);
    let now = now_millis();
    let idle_since = now - crate::store::duration_millis(SESSION_IDLE);
    let Some(session) = store.console_session(&hash, now, idle_since).await? else {
        return Ok(None);
    };
    let email = match &session.user_id {
        Some(id) => match store.console_user(id).await? {
            Some(user) if user.status == "active" => Some(user.email),
            _ => return Ok(None),
        },
        None => None,
    };
    if now - session.last_seen_at > TOUCH_EVERY {
        store.touch_console_session(&hash, now).await?;
    }
    Ok(Some(Principal {
        token_hash: hash,
        user_id: session.user_id,
        email,
        subscriber_id: session.subscriber_id,
        role: session.role,
        csrf_token: session.csrf_token,
    }))
}

pub async fn sign_out(store: &dyn Store, principal: &Principal) -> ServiceResult<()> {
    store.delete_console_session(&principal.token_hash).await?;
    Ok(())
}

/// Why a password change was refused.
#[derive(Debug)]
pub enum PasswordChangeError {
    /// The current password is wrong (counted by the sign-in throttle).
    Wrong,
    /// The new password does not fit: why, for the form.
    Unfit(&'static str),
    Throttled(u64),
    Failed(ServiceError),
}

impl From<crate::store::StoreError> for PasswordChangeError {
    fn from(err: crate::store::StoreError) -> Self {
        Self::Failed(err.into())
    }
}

impl From<ServiceError> for PasswordChangeError {
    fn from(err: ServiceError) -> Self {
        Self::Failed(err)
    }
}

/// A console user changes their own password: the current one checked
/// (wrong guesses count against the account as failed sign-ins do), the new
/// one twice. The user's other sessions end; this one stays.
pub async fn change_password(
    store: &dyn Store,
    throttle: &LoginThrottle,
    principal: &Principal,
    current: &str,
    new: &str,
    repeated: &str,
    address: &str,
) -> Result<(), PasswordChangeError> {
    let (Some(user_id), Some(subscriber_id)) = (&principal.user_id, &principal.subscriber_id)
    else {
        return Err(ServiceError::Forbidden(
            "The operator signs in with the admin token: there is no password to change".into(),
        )
        .into());
    };
    let user = store
        .console_user(user_id)
        .await?
        .filter(|u| u.status == "active" && u.subscriber_id == *subscriber_id)
        .ok_or_else(|| ServiceError::not_found("No such console user"))?;
    if let Some(wait) = throttle.blocked(&user.email, address) {
        return Err(PasswordChangeError::Throttled(wait));
    }
    if !(PASSWORD_MIN..=PASSWORD_MAX).contains(&new.chars().count()) {
        return Err(PasswordChangeError::Unfit(
            "The new password must be 12 to 256 characters long.",
        ));
    }
    if new != repeated {
        return Err(PasswordChangeError::Unfit("The two new passwords differ."));
    }
    if !verify_password(current, &user.password_hash).await {
        throttle.fail(&user.email, address);
        return Err(PasswordChangeError::Wrong);
    }
    if new == current {
        return Err(PasswordChangeError::Unfit(
            "The new password is the current one.",
        ));
    }
    throttle.succeed(&user.email);
    let hash = hash_password(new).await?;
    let changed = store
        .set_console_user_password(
            subscriber_id,
            user_id,
            &hash,
            &principal.token_hash,
            now_millis(),
            &principal.actor(),
        )
        .await?;
    if !changed {
        return Err(ServiceError::not_found("No such console user").into());
    }
    Ok(())
}

/// The operator picks the subscriber the session views.
pub async fn pick_subscriber(
    store: &dyn Store,
    principal: &Principal,
    subscriber_id: &str,
) -> ServiceResult<()> {
    if !principal.is_operator() {
        return Err(ServiceError::Forbidden(
            "Only the operator picks a subscriber".into(),
        ));
    }
    super::operator::existing(store, subscriber_id).await?;
    store
        .set_console_session_subscriber(&principal.token_hash, subscriber_id)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse battery").await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_password("correct horse battery", &hash).await);
        assert!(!verify_password("correct horse batterx", &hash).await);
        assert!(!verify_password("x", "not a hash").await);
    }

    #[test]
    fn emails_are_checked_and_lowercased() {
        let ok = normalize_email(&Value::from("Ann@Example.COM")).unwrap();
        assert_eq!(ok, "ann@example.com");
        for bad in ["", "a", "@b", "a@", "a@b@c", "a b@c", "a@b\n"] {
            assert!(normalize_email(&Value::from(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_throttle_counts_failures_per_account_and_address() {
        let t = LoginThrottle::default();
        for _ in 0..ACCOUNT_FAILURES {
            assert_eq!(t.blocked("a@x", "1.2.3.4"), None);
            t.fail("a@x", "1.2.3.4");
        }
        assert!(t.blocked("a@x", "5.6.7.8").is_some());
        assert_eq!(t.blocked("b@x", "1.2.3.4"), None);
        t.succeed("a@x");
        assert_eq!(t.blocked("a@x", "1.2.3.4"), None);
    }
}
