//! Reference data compiled into the binary: ISO 4217 currencies
//! ([`currency`]) and the BIN/IIN table ([`bins`]).
//!
//! Both tables live in this repository under `data/` (see `NOTICE` for their
//! origin and licences) and are embedded with `include_str!` /
//! `include_bytes!`, so the binary needs no file at run time. Each is decoded
//! once, on first use (`std::sync::LazyLock`); call [`init`] at start-up to
//! pay that cost (and surface a corrupt table) before the first request.
//! Pure: no I/O beyond reading the embedded bytes.

pub mod bins;
pub mod currency;

pub use bins::{lookup, BinInfo, BinSource, Funding};
pub use currency::{currency, minor_to_major, minor_to_major_exact, Currency, MajorAmount};

/// Decodes both embedded tables now and reports their sizes; an error means
/// the embedded data is corrupt (a build problem, never an input problem).
pub fn init() -> Result<ReferenceStats, String> {
    let table = bins::table()?;
    Ok(ReferenceStats {
        currencies: currency::all().len(),
        bin_rows: table.len(),
        bin_table_bytes: table.memory_bytes(),
    })
}

/// What [`init`] loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReferenceStats {
    /// Active ISO 4217 currencies.
    pub currencies: usize,
    /// Rows of the BIN table.
    pub bin_rows: usize,
    /// Bytes the BIN table takes: embedded blob plus decoded structures.
    pub bin_table_bytes: usize,
}

/// Splits one CSV record (RFC 4180 quoting: `"a, b"`, `""` for a quote) into
/// its fields. No embedded newlines: both tables are one record per line.
pub fn parse_csv_line(line: &str) -> Vec<String> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, in_quotes) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', true) => in_quotes = false,
            ('"', false) if field.is_empty() => in_quotes = true,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_line_handles_quotes() {
        assert_eq!(
            parse_csv_line("002102,\"PRIVATE LABEL\",CREDIT,,\"A, \"\"B\"\"\"\r\n"),
            vec!["002102", "PRIVATE LABEL", "CREDIT", "", "A, \"B\""]
        );
    }

    #[test]
    fn init_loads_both_tables() {
        let stats = init().unwrap();
        assert_eq!(stats.currencies, 178);
        assert_eq!(stats.bin_rows, 374_788);
        assert!(stats.bin_table_bytes > 0);
    }
}
