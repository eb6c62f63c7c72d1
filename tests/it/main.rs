//! The integration tests: one binary, one module per feature, the helpers in
//! `common` compiled once. The harness is `libtest-mimic` (`harness = false`),
//! so a test whose server is unreachable can be reported as ignored; see
//! `common::trials`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod adapters;
mod api;
mod backtests;
mod callbacks;
mod card_data;
mod connections;
mod console;
mod gateway_labels;
mod hardening;
mod lists;
mod outages;
mod prefetch;
mod process;
mod rate_limits;
mod rule_versions;
mod scoring;
mod signal_cache;
mod simulated_traffic;
mod simulator;
mod store_contract;
mod velocity;

use std::collections::HashSet;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = libtest_mimic::Arguments::from_args();
    let trials: Vec<_> = [
        adapters::trials(),
        api::trials(),
        backtests::trials(),
        callbacks::trials(),
        card_data::trials(),
        connections::trials(),
        console::trials(),
        gateway_labels::trials(),
        hardening::trials(),
        lists::trials(),
        outages::trials(),
        prefetch::trials(),
        process::trials(),
        rate_limits::trials(),
        rule_versions::trials(),
        scoring::trials(),
        signal_cache::trials(),
        simulated_traffic::trials(),
        simulator::trials(),
        store_contract::trials(),
        velocity::trials(),
    ]
    .into_iter()
    .flatten()
    .collect();
    // Two trials of one name could not be told apart in the output, nor run alone.
    let mut names = HashSet::new();
    for trial in &trials {
        assert!(
            names.insert(trial.name()),
            "two trials named {}",
            trial.name()
        );
    }
    libtest_mimic::run(&args, trials).exit_code()
}
