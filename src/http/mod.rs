//! The HTTP edge: thin handlers that parse, authorize, call a service and map
//! its error to a status; the auth extractors; the `{"error"}` contract.
//! Nothing below this module imports it.

pub mod audit;
pub mod auth;
pub mod backtests;
pub mod bodies;
pub mod connections;
pub mod console_users;
pub mod customers;
pub mod decisions;
pub mod error;
pub mod ingest;
pub mod labels;
pub mod lists;
pub mod operator;
pub mod ops;
pub mod request;
pub mod rule_versions;
