//! Generates `data/bins.bin` (the embedded BIN table) from bin-list-data's
//! CSV. A dev tool: the repository ships its output.
//!
//! ```text
//! cargo run --release --example build_bin_table -- ../shared/data/bins.csv data/bins.bin
//! ```
//! Normalization and file format: `src/reference/bins.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use riskgate::decision::reference::bins::{encode_table, normalize_source_row, BinTable};
use riskgate::decision::reference::parse_csv_line;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, input, output] = args.as_slice() else {
        eprintln!("usage: build_bin_table <bins.csv> <bins.bin>");
        std::process::exit(2);
    };
    let text = std::fs::read_to_string(input).expect("read the CSV");
    let mut lines = text.lines();
    let header = parse_csv_line(lines.next().expect("a header line"));
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("column {name} missing"))
    };
    let (bin, brand, ty, cat, issuer, iso2) = (
        col("BIN"),
        col("Brand"),
        col("Type"),
        col("Category"),
        col("Issuer"),
        col("isoCode2"),
    );
    let mut rows = Vec::new();
    for (n, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let f = parse_csv_line(line);
        let get = |i: usize| f.get(i).map(String::as_str).unwrap_or("");
        match normalize_source_row(
            get(bin),
            get(brand),
            get(ty),
            get(cat),
            get(issuer),
            get(iso2),
        ) {
            Ok(r) => rows.push(r),
            Err(e) => panic!("line {}: {e}", n + 2),
        }
    }
    let count = rows.len();
    let bytes = encode_table(rows).expect("encode");
    let table: &'static BinTable =
        Box::leak(Box::new(BinTable::decode(&bytes).expect("round trip")));
    assert_eq!(table.len(), count);
    std::fs::write(output, &bytes).expect("write the output");
    let [b, c, i, k] = table.dictionary_sizes();
    println!(
        "{output}: {} bytes, {count} rows; dictionaries: {b} brands, {c} categories, {i} issuers, {k} countries (each with the empty entry)",
        bytes.len()
    );
}
