//! BIN lookup benchmark: time to decode the embedded table, memory it takes,
//! and nanoseconds per lookup over 1M random lookups.
//!
//! ```text
//! cargo run --release --example bench_bin_lookup
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use riskgate::decision::reference::bins;

const LOOKUPS: usize = 1_000_000;

fn main() {
    let start = Instant::now();
    let table = bins::table().expect("embedded table decodes");
    let load = start.elapsed();
    println!(
        "load: {:.1} ms to decode {} rows (dictionaries brands/categories/issuers/countries: {:?})",
        load.as_secs_f64() * 1e3,
        table.len(),
        table.dictionary_sizes()
    );
    println!(
        "memory: {} bytes ({:.2} MiB) = embedded blob + decoded rows, bitmap index, long keys and dictionaries",
        table.memory_bytes(),
        table.memory_bytes() as f64 / (1024.0 * 1024.0)
    );

    // Inputs: the BINs of 1M random rows, read back from the table itself
    // (as 16-digit PAN-like strings so the 8- and 7-digit probes run too),
    // plus a run of random 6-digit strings (hits, IIN fallbacks and misses).
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let probes: Vec<String> = (0..100_000)
        .map(|_| format!("{:06}", rng.gen_range(0..1_000_000u32)))
        .collect();
    let known: Vec<String> = probes
        .iter()
        .filter_map(|p| bins::lookup(p))
        .filter(|i| i.source == bins::BinSource::Table)
        .map(|i| i.bin.to_string())
        .collect();
    let table_inputs: Vec<String> = (0..LOOKUPS)
        .map(|_| {
            let bin = &known[rng.gen_range(0..known.len())];
            format!("{bin}{:010}", rng.gen_range(0..10_000_000_000u64))
        })
        .collect();
    let random_inputs: Vec<String> = (0..LOOKUPS)
        .map(|_| format!("{:06}", rng.gen_range(0..1_000_000u32)))
        .collect();

    let hot_inputs: Vec<String> = table_inputs
        .iter()
        .take(64)
        .cycle()
        .take(LOOKUPS)
        .cloned()
        .collect();
    for (name, inputs) in [
        (
            "table BINs (16-digit PAN input: 8, 7, 6-digit probes)",
            &table_inputs,
        ),
        ("random 6-digit input", &random_inputs),
        ("64 distinct PANs repeated (cache-hot)", &hot_inputs),
    ] {
        // Warm-up, then the timed run.
        for s in inputs.iter().take(10_000) {
            black_box(bins::lookup(black_box(s)));
        }
        let start = Instant::now();
        let mut hits = 0usize;
        for s in inputs {
            if let Some(info) = bins::lookup(black_box(s)) {
                hits += usize::from(info.source == bins::BinSource::Table);
                black_box(info);
            }
        }
        let elapsed = start.elapsed();
        println!(
            "{name}: {:.1} ns per lookup over {} lookups ({hits} table hits)",
            elapsed.as_nanos() as f64 / inputs.len() as f64,
            inputs.len()
        );
    }
}
