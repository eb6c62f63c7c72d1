//! Durable background work: fetching a device's analysis from its provider
//! after an ingest, and delivering a decision's signed callback.

pub mod callbacks;
pub mod device_fetch;

pub use self::callbacks::{CallbackConfig, CallbackWorker};
pub use self::device_fetch::{PrefetchConfig, Prefetcher, Upstream};
