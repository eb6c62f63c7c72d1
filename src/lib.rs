//! riskgate: a self-hosted, multi-tenant fraud decision service.
//!
//! Layers, top to bottom: `app` (router, start-up) → feature modules
//! (`ingest`, `operator`, `ops`) → `auth`, `request`, `error` → pure logic
//! (`providers`, `rules`, `secrets`) and `store`. Nothing points upward.

#![forbid(unsafe_code)]

pub mod app;
pub mod auth;
pub mod cache;
pub mod callbacks;
pub mod cli;
pub mod config;
pub mod customers;
pub mod decisions;
pub mod demo;
pub mod error;
pub mod gateways;
pub mod ingest;
pub mod metrics;
pub mod operator;
pub mod ops;
pub mod prefetch;
pub mod providers;
pub mod reference;
pub mod request;
pub mod rules;
pub mod scoring;
pub mod scrub;
pub mod secrets;
pub mod simulator;
pub mod store;
pub mod ttl_cache;
pub mod velocity;
