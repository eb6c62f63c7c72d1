//! riskgate: a self-hosted, multi-tenant fraud decision service.
//!
//! Layers, top to bottom, every arrow pointing down:
//! - `main`, `cli`, `app` (state, router, start-up and shutdown);
//! - `http` and `console` (the analyst web console's pages) (thin handlers, auth extractors, the `{"error"}` contract) and
//!   `jobs` (the job runner and its handlers: device fetches, callbacks);
//! - `service` (assessing a transaction, finding a device, ingest, customers,
//!   operator actions);
//! - `store`, `cache`, `velocity`, `providers`, `callbacks` (signing, SSRF);
//!   `cache` and `velocity` share `redis_link` (one fail-fast Redis connection);
//! - `decision`: the pure core, free of I/O, importing nothing above it.

#![forbid(unsafe_code)]

pub mod app;
pub mod cache;
pub mod callbacks;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod decision;
pub mod demo;
pub mod fields;
pub mod http;
pub mod jobs;
pub mod metrics;
pub mod providers;
pub mod rate_limit;
pub mod redis_link;
pub mod secrets;
pub mod service;
pub mod simulator;
pub mod state;
pub mod store;
pub mod traffic;
pub mod ttl_cache;
pub mod velocity;
