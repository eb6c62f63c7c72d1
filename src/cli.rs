//! The command line: `riskgate serve` (the default) and the operator commands,
//! which work directly on the database named by `--database-url`.
//!
//! Operator commands print the same JSON the operator API answers with.

use std::ffi::OsString;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::config::{sealer, DbArgs, ServeConfig};
use crate::fields::FieldError;
use crate::http::error::ApiError;
use crate::service::auth::rotate_admin_token;
use crate::service::{operator, ServiceError};
use crate::simulator::SimulatorConfig;
use crate::store::{Actor, DatabaseUrl, JobFilter, JobState, Store, SubscriberStatus};
use crate::traffic::TrafficConfig;

/// Who the command line acts as in the audit log: whoever runs it holds the
/// database, as the operator does.
const OPERATOR: Actor = Actor::Operator;

#[derive(Parser)]
#[command(
    name = "riskgate",
    version,
    about = "Self-hosted, multi-tenant fraud decision service"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the HTTP service (the default when no command is given).
    Serve(Box<ServeConfig>),
    /// Create, list, show, suspend and reactivate subscribers.
    Subscriber {
        #[command(subcommand)]
        action: SubscriberAction,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Issue, list and revoke a subscriber's API keys.
    Key {
        #[command(subcommand)]
        action: KeyAction,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Store a subscriber's device-provider credentials.
    Provider {
        #[command(subcommand)]
        action: ProviderAction,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Create, list and disable a subscriber's console users.
    User {
        #[command(subcommand)]
        action: UserAction,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Inspect recorded jobs.
    Job {
        #[command(subcommand)]
        action: JobAction,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Replace the operator admin token (prints the new one once).
    AdminToken {
        #[command(subcommand)]
        action: AdminTokenAction,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Serve the Fingerprint, Stytch and FingerprintIQ server APIs on loopback
    /// from embedded fixtures, with settable latency and faults (demos, tests,
    /// benchmarks).
    SimulateProviders(SimulatorConfig),
    /// Play a seeded, labelled population of shoppers and attacks through a
    /// riskgate's API (with the provider simulator as device provider, as
    /// `serve --demo` runs it) and print allow/review/block, catch and
    /// false-positive rates per scenario.
    SimulateTraffic(TrafficConfig),
}

#[derive(Subcommand)]
pub enum SubscriberAction {
    /// Create a subscriber; prints it with its webhook signing secret (once).
    Create {
        #[arg(long)]
        name: String,
        /// Its id (1-64 of [A-Za-z0-9_-]); generated when absent.
        #[arg(long)]
        id: Option<String>,
        /// How its callbacks are signed: `v1` (HMAC, the default) or `v1a`
        /// (Ed25519; prints the public key receivers verify with).
        #[arg(long)]
        signing_scheme: Option<String>,
    },
    List,
    Show {
        id: String,
    },
    /// Rename a subscriber.
    Rename {
        id: String,
        #[arg(long)]
        name: String,
    },
    /// Print a subscriber's current rule set.
    Rules {
        id: String,
    },
    /// Replace a subscriber's rule set with the JSON document in FILE (the
    /// body of `PUT /admin/subscribers/{id}/rules`).
    SetRules {
        id: String,
        file: std::path::PathBuf,
    },
    /// Rotate the webhook signing secret; prints the new one once. Callbacks
    /// carry both signatures during the grace period.
    RotateSecret {
        id: String,
        /// How long the previous secret keeps signing (e.g. `24h`, at most 30 days).
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        grace: std::time::Duration,
    },
    /// Set how callbacks are signed: `v1` (HMAC-SHA256, `whsec_` secret) or
    /// `v1a` (Ed25519; prints the `whpk_` public key). The scheme before keeps
    /// signing too during the grace period.
    SigningScheme {
        id: String,
        /// `v1` or `v1a`.
        scheme: String,
        /// How long the scheme before keeps signing (e.g. `24h`, at most 30 days).
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        grace: std::time::Duration,
    },
    /// Replace the Ed25519 (`v1a`) key pair; prints the new public key (the
    /// private key is never shown). Callbacks carry both signatures during
    /// the grace period.
    RotateSigningKey {
        id: String,
        /// How long the previous key keeps signing (e.g. `24h`, at most 30 days).
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        grace: std::time::Duration,
    },
    /// Send a failed callback again.
    RetryCallback {
        id: String,
        decision_id: String,
    },
    /// Suspend: its API keys are refused from the next request on.
    Suspend {
        id: String,
    },
    /// Reactivate a suspended subscriber.
    Activate {
        id: String,
    },
}

#[derive(Subcommand)]
pub enum KeyAction {
    /// Issue an API key; prints it once.
    Create {
        subscriber_id: String,
        /// A label for the key.
        #[arg(long)]
        name: Option<String>,
    },
    List {
        subscriber_id: String,
    },
    Revoke {
        subscriber_id: String,
        key_id: String,
    },
}

#[derive(Subcommand)]
pub enum ProviderAction {
    /// Store credentials: fingerprint needs --secret-key (and takes --region,
    /// --api-version); stytch needs --project-id and --secret; fingerprintiq
    /// needs --secret-key. Secrets may come from the environment instead.
    Set {
        subscriber_id: String,
        /// fingerprint, stytch or fingerprintiq.
        provider: String,
        #[arg(long, env = "RISKGATE_PROVIDER_SECRET_KEY", hide_env_values = true)]
        secret_key: Option<String>,
        #[arg(long)]
        region: Option<String>,
        #[arg(long)]
        api_version: Option<String>,
        #[arg(long)]
        project_id: Option<String>,
        #[arg(long, env = "RISKGATE_PROVIDER_SECRET", hide_env_values = true)]
        secret: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum UserAction {
    /// Create a console user; without --password (or
    /// RISKGATE_USER_PASSWORD) a password is generated and printed once.
    Create {
        subscriber_id: String,
        #[arg(long)]
        email: String,
        /// `analyst` or `admin`.
        #[arg(long, default_value = "analyst")]
        role: String,
        #[arg(long, env = "RISKGATE_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    List {
        subscriber_id: String,
    },
    /// Disable a user: signed out at once, refused at sign-in.
    Disable {
        subscriber_id: String,
        user_id: String,
    },
    /// Enable a disabled user again.
    Enable {
        subscriber_id: String,
        user_id: String,
    },
}

#[derive(Subcommand)]
pub enum JobAction {
    /// List jobs, newest first.
    List {
        #[arg(long)]
        subscriber: Option<String>,
        /// pending, running, succeeded or failed.
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
}

#[derive(Subcommand)]
pub enum AdminTokenAction {
    /// Generate a new admin token, store its hash, print it once. Servers
    /// started without --admin-token accept it at once.
    Rotate,
}

/// The arguments as clap should see them: no command means `serve`, so
/// `riskgate --listen …` works like `riskgate serve --listen …`.
pub fn with_default_command(args: Vec<OsString>) -> Vec<OsString> {
    let first = args.get(1).and_then(|a| a.to_str());
    let explicit = matches!(first, Some(a) if !a.starts_with('-'))
        || matches!(first, Some("-h" | "--help" | "-V" | "--version"));
    if explicit {
        return args;
    }
    let mut out = Vec::with_capacity(args.len() + 1);
    out.extend(args.first().cloned());
    out.push("serve".into());
    out.extend(args.into_iter().skip(1));
    out
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Api(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<ServiceError> for CliError {
    /// The same message the operator API would answer with.
    fn from(err: ServiceError) -> Self {
        Self::Api(ApiError::from(err).message)
    }
}

impl From<FieldError> for CliError {
    fn from(err: FieldError) -> Self {
        Self::Api(err.0)
    }
}

fn print(value: &impl Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(anyhow::Error::from)?;
    println!("{text}");
    Ok(())
}

/// Opens the database. Only commands that create something may create an
/// SQLite file: a mistyped path for `list` or `revoke` is an error, not a new
/// empty database that answers "not found".
async fn open_db(db: &DbArgs, may_create: bool) -> Result<Arc<dyn Store>, CliError> {
    if let DatabaseUrl::Sqlite { path } = &db.database_url {
        if !may_create && !std::path::Path::new(path).exists() {
            return Err(CliError::Other(anyhow::anyhow!(
                "database file {path} does not exist (check --database-url / RISKGATE_DATABASE_URL)"
            )));
        }
    }
    crate::store::connect(&db.database_url).await.map_err(|e| {
        CliError::Other(anyhow::anyhow!(
            "database {}: {e}",
            db.database_url.redacted()
        ))
    })
}

async fn user(store: &dyn Store, action: UserAction) -> Result<(), CliError> {
    use crate::service::console;
    match action {
        UserAction::Create {
            subscriber_id,
            email,
            role,
            password,
        } => {
            let mut body = Map::new();
            body.insert("email".into(), Value::String(email));
            body.insert("role".into(), Value::String(role));
            if let Some(password) = password {
                body.insert("password".into(), Value::String(password));
            }
            print(&console::create_user(store, &subscriber_id, &body, &OPERATOR).await?)
        }
        UserAction::List { subscriber_id } => {
            print(&console::list_users(store, &subscriber_id).await?)
        }
        UserAction::Disable {
            subscriber_id,
            user_id,
        } => set_user_status(store, &subscriber_id, &user_id, "disabled").await,
        UserAction::Enable {
            subscriber_id,
            user_id,
        } => set_user_status(store, &subscriber_id, &user_id, "active").await,
    }
}

async fn set_user_status(
    store: &dyn Store,
    subscriber_id: &str,
    user_id: &str,
    status: &str,
) -> Result<(), CliError> {
    let body = json!({ "status": status });
    let Value::Object(body) = body else {
        return Err(CliError::Other(anyhow::anyhow!("status body")));
    };
    print(
        &crate::service::console::set_user_status(store, subscriber_id, user_id, &body, &OPERATOR)
            .await?,
    )
}

/// Runs one operator command to completion.
pub async fn run_operator_command(command: Command) -> Result<(), CliError> {
    match command {
        Command::Serve(_) => Err(CliError::Other(anyhow::anyhow!(
            "serve is not an operator command"
        ))),
        Command::SimulateProviders(_) => Err(CliError::Other(anyhow::anyhow!(
            "simulate-providers is not an operator command"
        ))),
        Command::SimulateTraffic(_) => Err(CliError::Other(anyhow::anyhow!(
            "simulate-traffic is not an operator command"
        ))),
        Command::Subscriber { action, db } => {
            let creates = matches!(action, SubscriberAction::Create { .. });
            let store = open_db(&db, creates).await?;
            let result = subscriber(store.as_ref(), &db, action).await;
            store.close().await;
            result
        }
        Command::Key { action, db } => {
            let store = open_db(&db, false).await?;
            let result = match action {
                KeyAction::Create {
                    subscriber_id,
                    name,
                } => print(
                    &operator::create_key(
                        store.as_ref(),
                        &subscriber_id,
                        name.as_deref(),
                        &OPERATOR,
                    )
                    .await?,
                ),
                KeyAction::List { subscriber_id } => {
                    print(&operator::list_keys(store.as_ref(), &subscriber_id).await?)
                }
                KeyAction::Revoke {
                    subscriber_id,
                    key_id,
                } => print(
                    &operator::revoke_key(store.as_ref(), &subscriber_id, &key_id, &OPERATOR)
                        .await?,
                ),
            };
            store.close().await;
            result
        }
        Command::Provider {
            action:
                ProviderAction::Set {
                    subscriber_id,
                    provider,
                    secret_key,
                    region,
                    api_version,
                    project_id,
                    secret,
                },
            db,
        } => {
            let provider = operator::parse_provider(&provider)?;
            let mut body = Map::new();
            for (field, value) in [
                ("secret_key", secret_key),
                ("region", region),
                ("api_version", api_version),
                ("project_id", project_id),
                ("secret", secret),
            ] {
                if let Some(value) = value {
                    body.insert(field.to_owned(), Value::String(value));
                }
            }
            let store = open_db(&db, false).await?;
            let sealer = checked_sealer(store.as_ref(), &db).await?;
            let result = operator::put_provider(
                store.as_ref(),
                &sealer,
                &subscriber_id,
                provider,
                &body,
                &OPERATOR,
            )
            .await
            .map_err(|e| CliError::Api(cli_field_names(&ApiError::from(e).message)));
            store.close().await;
            print(&result?)
        }
        Command::User { action, db } => {
            let store = open_db(&db, false).await?;
            let result = user(store.as_ref(), action).await;
            store.close().await;
            result
        }
        Command::Job {
            action:
                JobAction::List {
                    subscriber,
                    state,
                    limit,
                },
            db,
        } => {
            let state = state
                .map(|s| {
                    JobState::parse(&s).ok_or_else(|| {
                        CliError::Api(
                            "--state: expected pending, running, succeeded or failed".into(),
                        )
                    })
                })
                .transpose()?;
            let store = open_db(&db, false).await?;
            let filter = JobFilter {
                subscriber_id: subscriber,
                kind: None,
                state,
                limit,
            };
            let result = operator::list_jobs(store.as_ref(), &filter).await;
            store.close().await;
            print(&result?)
        }
        Command::AdminToken {
            action: AdminTokenAction::Rotate,
            db,
        } => {
            let store = open_db(&db, true).await?;
            let token = rotate_admin_token(store.as_ref())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"));
            store.close().await;
            print(&json!({ "admin_token": token? }))
        }
    }
}

async fn subscriber(
    store: &dyn Store,
    db: &DbArgs,
    action: SubscriberAction,
) -> Result<(), CliError> {
    match action {
        SubscriberAction::Create {
            name,
            id,
            signing_scheme,
        } => {
            let sealer = checked_sealer(store, db).await?;
            let mut body = Map::new();
            body.insert("name".into(), Value::String(name));
            if let Some(id) = id {
                body.insert("id".into(), Value::String(id));
            }
            if let Some(scheme) = signing_scheme {
                body.insert("signing_scheme".into(), Value::String(scheme));
            }
            print(&operator::create_subscriber(store, &sealer, &body, &OPERATOR).await?)
        }
        SubscriberAction::List => print(&operator::list_subscribers(store).await?),
        SubscriberAction::Rename { id, name } => {
            print(&operator::set_subscriber(store, &id, Some(&name), None, &OPERATOR).await?)
        }
        SubscriberAction::Rules { id } => print(&operator::get_rules(store, &id).await?),
        SubscriberAction::SetRules { id, file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| CliError::Api(format!("{}: {e}", file.display())))?;
            let body = crate::fields::parse_object(text.as_bytes())?;
            print(
                &crate::service::rule_versions::put_rules(
                    store,
                    &id,
                    &body,
                    &crate::store::Actor::Operator,
                )
                .await?,
            )
        }
        SubscriberAction::RotateSecret { id, grace } => {
            let sealer = checked_sealer(store, db).await?;
            print(&operator::rotate_secret(store, &sealer, &id, grace, &OPERATOR).await?)
        }
        SubscriberAction::SigningScheme { id, scheme, grace } => {
            let scheme = operator::parse_signing_scheme(&Value::String(scheme))?;
            let sealer = checked_sealer(store, db).await?;
            print(
                &operator::set_signing_scheme(store, &sealer, &id, scheme, grace, &OPERATOR)
                    .await?,
            )
        }
        SubscriberAction::RotateSigningKey { id, grace } => {
            let sealer = checked_sealer(store, db).await?;
            print(&operator::rotate_signing_key(store, &sealer, &id, grace, &OPERATOR).await?)
        }
        SubscriberAction::RetryCallback { id, decision_id } => {
            print(&operator::retry_callback(store, &id, &decision_id).await?)
        }
        SubscriberAction::Show { id } => print(&operator::get_subscriber(store, &id).await?),
        SubscriberAction::Suspend { id } => print(
            &operator::set_subscriber(
                store,
                &id,
                None,
                Some(SubscriberStatus::Suspended),
                &OPERATOR,
            )
            .await?,
        ),
        SubscriberAction::Activate { id } => print(
            &operator::set_subscriber(store, &id, None, Some(SubscriberStatus::Active), &OPERATOR)
                .await?,
        ),
    }
}

/// The sealer, checked against the key the database's secrets use.
async fn checked_sealer(
    store: &dyn Store,
    db: &DbArgs,
) -> Result<crate::secrets::Sealer, CliError> {
    let sealer = sealer(db).map_err(anyhow::Error::from)?;
    crate::config::check_sealer(store, &sealer)
        .await
        .map_err(anyhow::Error::from)?;
    Ok(sealer)
}

/// Error messages name JSON fields; on the command line they are flags.
fn cli_field_names(message: &str) -> String {
    let mut out = message.to_owned();
    for field in [
        "secret_key",
        "region",
        "api_version",
        "project_id",
        "secret",
    ] {
        let flag = format!("--{}", field.replace('_', "-"));
        out = out
            .replace(
                &format!("Missing '{field}' in request body"),
                &format!("missing {flag}"),
            )
            .replace(&format!("Invalid '{field}'"), &format!("invalid {flag}"));
    }
    out
}
