//! ISO 4217 currencies and their minor units (exponents).
//!
//! The table is `data/iso4217.csv`, embedded: the active rows (no
//! `WithdrawalDate`) of the ISO 4217 list as published by
//! github.com/datasets/currency-codes (ODC-PDDL-1.0), one row per code, only
//! the columns needed here (`AlphabeticCode,NumericCode,MinorUnit,Currency`).
//! Withdrawn codes (DEM, FRF, …) are therefore unknown.
//!
//! Amounts: [`minor_to_major_exact`] gives an exact decimal ([`MajorAmount`]:
//! an `i128` count of minor units plus the exponent, printed as e.g.
//! `1250.00`); [`minor_to_major`] gives the nearest `f64` (exact whenever the
//! minor amount is below 2^53 in magnitude: one correctly rounded division).

use std::fmt;
use std::sync::LazyLock;

static CSV: &str = include_str!("../../../data/iso4217.csv");

static TABLE: LazyLock<Vec<Currency>> = LazyLock::new(|| parse_table(CSV));

/// One active ISO 4217 currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Currency {
    /// Alphabetic code, upper case (`"EUR"`).
    pub code: &'static str,
    /// Numeric code (`978`).
    pub numeric: u16,
    /// Minor unit: digits after the decimal point (JPY 0, EUR 2, KWD 3,
    /// CLF 4); `None` where ISO says "not applicable" (`-`: XAU, XDR, XTS, …).
    pub exponent: Option<u8>,
    /// ISO's English name (`"Euro"`).
    pub name: &'static str,
}

impl Currency {
    /// The exact major amount of `amount_minor` in this currency. A currency
    /// without a minor unit (`exponent: None`) is taken as exponent 0.
    pub fn major_from_minor(&self, amount_minor: i64) -> MajorAmount {
        minor_to_major_exact(amount_minor, self.exponent.unwrap_or(0))
    }
}

/// The active currency with this alphabetic code, any case (`"eur"`,
/// `"EUR"`); `None` for unknown or withdrawn codes and anything that is not
/// three ASCII letters.
pub fn currency(code: &str) -> Option<Currency> {
    let bytes = code.as_bytes();
    if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    let mut upper = [0u8; 3];
    upper.copy_from_slice(bytes);
    upper.make_ascii_uppercase();
    let upper = std::str::from_utf8(&upper).ok()?;
    let table = all();
    table
        .binary_search_by(|c| c.code.cmp(upper))
        .ok()
        .and_then(|i| table.get(i).copied())
}

/// Every active currency, sorted by code.
pub fn all() -> &'static [Currency] {
    &TABLE
}

fn parse_table(text: &'static str) -> Vec<Currency> {
    let mut out: Vec<Currency> = text
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut f = line.splitn(4, ',');
            let code = f.next()?.trim();
            let numeric = f.next()?.trim().parse().ok()?;
            let exponent = match f.next()?.trim() {
                "-" => None,
                e => Some(e.parse().ok()?),
            };
            let name = f.next()?.trim();
            (code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())).then_some(Currency {
                code,
                numeric,
                exponent,
                name,
            })
        })
        .collect();
    out.sort_by(|a, b| a.code.cmp(b.code));
    out.dedup_by(|a, b| a.code == b.code);
    out
}

/// `amount_minor / 10^exponent` as the nearest `f64` (JPY: 2500 → 2500.0;
/// EUR: 125000 → 1250.0).
pub fn minor_to_major(amount_minor: i64, exponent: u8) -> f64 {
    minor_to_major_exact(amount_minor, exponent).to_f64()
}

/// `amount_minor / 10^exponent` exactly.
pub fn minor_to_major_exact(amount_minor: i64, exponent: u8) -> MajorAmount {
    MajorAmount {
        minor: i128::from(amount_minor),
        exponent,
    }
}

/// An exact decimal amount: `minor / 10^exponent`. `Display` prints every
/// minor digit (`EUR 125000` → `1250.00`, `JPY 2500` → `2500`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MajorAmount {
    /// The amount in minor units.
    pub minor: i128,
    /// Digits after the decimal point.
    pub exponent: u8,
}

impl MajorAmount {
    /// The nearest `f64` (one correctly rounded division while `|minor| <
    /// 2^53` and `exponent <= 22`).
    pub fn to_f64(self) -> f64 {
        // The `as` casts are the intended rounding to the nearest double.
        #[allow(clippy::cast_precision_loss)]
        let minor = self.minor as f64;
        minor / 10f64.powi(i32::from(self.exponent))
    }
}

impl fmt::Display for MajorAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.minor.unsigned_abs().to_string();
        let exp = usize::from(self.exponent);
        let sign = if self.minor < 0 { "-" } else { "" };
        if exp == 0 {
            return write!(f, "{sign}{digits}");
        }
        let padded = format!("{digits:0>width$}", width = exp + 1);
        let (int, frac) = padded.split_at(padded.len() - exp);
        write!(f, "{sign}{int}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponents_follow_iso() {
        assert_eq!(currency("JPY").unwrap().exponent, Some(0));
        assert_eq!(currency("EUR").unwrap().exponent, Some(2));
        assert_eq!(currency("KWD").unwrap().exponent, Some(3));
        assert_eq!(currency("CLF").unwrap().exponent, Some(4));
        assert_eq!(currency("XAU").unwrap().exponent, None);
        let eur = currency("EUR").unwrap();
        assert_eq!((eur.code, eur.numeric, eur.name), ("EUR", 978, "Euro"));
    }

    #[test]
    fn any_case_accepted_and_junk_refused() {
        assert_eq!(currency("eur").unwrap().code, "EUR");
        assert_eq!(currency("uSd").unwrap().code, "USD");
        for bad in ["", "EU", "EURO", "E1R", " EUR", "ZZZ", "€€€"] {
            assert_eq!(currency(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn withdrawn_codes_absent() {
        for gone in ["DEM", "FRF", "ITL", "ADP", "VEF", "HRK", "SLL", "ESP"] {
            assert_eq!(currency(gone), None, "{gone}");
        }
        assert_eq!(all().len(), 178);
    }

    #[test]
    fn minor_to_major_uses_exponent() {
        assert_eq!(minor_to_major(2500, 0), 2500.0);
        assert_eq!(minor_to_major(125_000, 2), 1250.0);
        assert_eq!(minor_to_major(1_234, 3), 1.234);
        assert_eq!(minor_to_major(-1, 2), -0.01);
        assert_eq!(minor_to_major_exact(2500, 0).to_string(), "2500");
        assert_eq!(minor_to_major_exact(125_000, 2).to_string(), "1250.00");
        assert_eq!(minor_to_major_exact(5, 3).to_string(), "0.005");
        assert_eq!(minor_to_major_exact(-105, 2).to_string(), "-1.05");
        assert_eq!(
            minor_to_major_exact(i64::MIN, 4).to_string(),
            "-922337203685477.5808"
        );
        let jpy = currency("jpy").unwrap();
        assert_eq!(jpy.major_from_minor(2500).to_string(), "2500");
        let xau = currency("XAU").unwrap();
        assert_eq!(xau.major_from_minor(7).to_string(), "7");
    }

    /// The committed table agrees with the shared source (when present).
    #[test]
    fn matches_shared_source() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/iso4217.csv");
        let Ok(text) = std::fs::read_to_string(path) else {
            eprintln!("SKIPPED matches_shared_source: {path} not found");
            return;
        };
        let mut active = 0;
        let mut seen = std::collections::BTreeSet::new();
        for line in text.lines().skip(1) {
            let f = super::super::parse_csv_line(line);
            let (code, num, minor, withdrawn) = (&f[2], &f[3], &f[4], &f[5]);
            if code.is_empty() {
                continue;
            }
            if withdrawn.is_empty() {
                let c = currency(code).unwrap_or_else(|| panic!("{code} missing"));
                assert_eq!(c.numeric.to_string(), num.trim_start_matches('0'), "{code}");
                let want = if minor == "-" {
                    None
                } else {
                    Some(minor.parse().unwrap())
                };
                assert_eq!(c.exponent, want, "{code}");
                if seen.insert(code.clone()) {
                    active += 1;
                }
            }
        }
        for line in text.lines().skip(1) {
            let f = super::super::parse_csv_line(line);
            if !f[5].is_empty() && !seen.contains(&f[2]) {
                assert_eq!(currency(&f[2]), None, "withdrawn {} present", f[2]);
            }
        }
        assert_eq!(active, all().len());
    }
}
