//! The work riskgate does for its users, whoever asks: assessing a
//! transaction, finding a device, accepting an ingest, the customers' and the
//! operators' actions. HTTP handlers, the CLI and the job handlers all call
//! these; each takes its dependencies explicitly (the store, the cache, the
//! velocity counters, the rule book), never the HTTP state.

pub mod audit;
pub mod auth;
pub mod backtests;
pub mod console;
pub mod console_data;
pub mod customers;
pub mod devices;
pub mod gateway_labels;
pub mod ingest;
pub mod lists;
pub mod operator;
pub mod rate_limits;
pub mod rule_versions;
pub mod rulebook;
pub mod scoring;

pub use self::devices::Devices;
pub use self::ingest::Ingest;
pub use self::lists::ListBook;
pub use self::rulebook::RuleBook;
pub use self::scoring::Scoring;

use crate::decision::RequestError;
use crate::fields::FieldError;
use crate::store::StoreError;

/// Why a service refused or failed. The message of a refusal is what the
/// client sees; a failure keeps its cause for the log and shows nothing.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A missing or malformed field or header (`400`).
    #[error("{0}")]
    Invalid(String),
    /// The caller may not act on what it named (`403`).
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The request contradicts what is stored (`409`).
    #[error("{0}")]
    Conflict(String),
    /// Well-formed but unusable (`422`).
    #[error("{0}")]
    Unprocessable(String),
    /// Over the subscriber's rate limit (`429`); a request may succeed after
    /// `retry_after` seconds.
    #[error("{message}")]
    RateLimited { message: String, retry_after: u64 },
    #[error("storage: {0}")]
    Store(#[source] StoreError),
    /// Something that cannot happen with valid data did (`500`).
    #[error("internal: {0}")]
    Internal(&'static str),
}

impl ServiceError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }

    pub fn missing(field: &str) -> Self {
        FieldError::missing(field).into()
    }

    pub fn invalid(field: &str, why: &str) -> Self {
        FieldError::invalid(field, why).into()
    }

    /// A body's `subscriber_id` names another subscriber than the API key's.
    pub fn subscriber_mismatch() -> Self {
        Self::Forbidden("subscriber_id does not match API key".to_owned())
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }

    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::Unprocessable(message.into())
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict(message.into())
    }

    pub fn internal(what: &'static str) -> Self {
        Self::Internal(what)
    }
}

impl From<FieldError> for ServiceError {
    fn from(err: FieldError) -> Self {
        Self::Invalid(err.0)
    }
}

impl From<StoreError> for ServiceError {
    fn from(err: StoreError) -> Self {
        Self::Store(err)
    }
}

impl From<RequestError> for ServiceError {
    fn from(err: RequestError) -> Self {
        match err {
            RequestError::Invalid(message) => Self::Invalid(message),
            RequestError::Unprocessable(message) => Self::Unprocessable(message),
        }
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;
