//! BIN/IIN table: card brand, funding, prepaid, category, issuer and issuing
//! country from the first 6–8 digits of a card number.
//!
//! # Data
//! `data/bins.bin` is generated from bin-list-data (venelinkochev and
//! contributors, CC BY 4.0; see `NOTICE`) by
//! `cargo run --release --example build_bin_table -- <bins.csv> data/bins.bin`
//! and embedded with `include_bytes!`; it is decoded once, on first use.
//!
//! Normalization (done by [`normalize_source_row`], used by the generator):
//! - `Type`: `CREDIT` → credit, `DEBIT` → debit, `CHARGE CARD` → charge,
//!   anything else → `None`; a `Type` containing `PREPAID` → prepaid.
//! - prepaid: `Category` (or `Type`) contains `PREPAID`, any case.
//! - brand: lower case, with these renames (the names gateways use):
//!   `AMERICAN EXPRESS` → `amex`, `DINERS CLUB INTERNATIONAL` → `diners`,
//!   `CHINA UNION PAY` → `unionpay`, `NSPK MIR` → `mir`; every other brand is
//!   just lower-cased (`visa`, `mastercard`, `private label`, `visa/dankort`).
//! - category: lower case (`prepaid classic`); empty → `None`.
//! - issuer: as in the source (upper case); empty → `None`.
//! - country: `isoCode2` when it is two ASCII letters (upper case), else `None`.
//!
//! # File format (`data/bins.bin`, version 1)
//! The file is one gzip stream; inside it, all integers little-endian:
//! ```text
//! magic      8 bytes  "RGBINTBL"
//! version    u32      1
//! rows       u32      N
//! 4 dictionaries, in order brand, category, issuer, country; each:
//!   count    u32      entry 0 is always "" (= none)
//!   count × (len u16, len bytes of UTF-8)
//! 6 columns, N entries each, rows sorted by key:
//!   key delta  u32   key = digits << 27 | value (digits 6..=8, value the BIN
//!                    as a number); stored as key[i] - key[i-1] (key[-1] = 0)
//!   brand      u8    index into brands
//!   flags      u8    bits 0-1 funding (0 none, 1 credit, 2 debit, 3 charge),
//!                    bit 2 prepaid
//!   country    u8    index into countries
//!   category   u16   index into categories
//!   issuer     u16   index into issuers
//! ```
//! Columns rather than row records, and key deltas rather than keys, because
//! that compresses to half the size. In memory: one `Vec` of 8-byte rows in
//! key order; the 6-digit BINs as a bitmap over 000000–999999 with a running
//! count per 64-bit word (a lookup is one bit test and one popcount: the
//! row's index is the number of 6-digit BINs below it); 7- and 8-digit keys
//! as a sorted `Vec<u32>`, binary-searched.
//!
//! # Lookup
//! [`lookup`] takes 6 or more ASCII digits (a BIN or a PAN prefix) and
//! returns the longest table match among its first 8, 7 and 6 digits (the
//! source has 6-digit BINs only; the format allows 8). When no row matches it
//! falls back to the card networks' IIN ranges for the brand alone
//! ([`BinSource::IinRange`], table [`IIN_RANGES`]). Anything else (fewer than
//! 6 digits, a non-digit) → `None`. No allocation per lookup.

use std::io::{Read, Write};
use std::sync::LazyLock;

static BLOB: &[u8] = include_bytes!("../../../data/bins.bin");

static TABLE: LazyLock<Result<BinTable, String>> = LazyLock::new(|| BinTable::decode(BLOB));

const MAGIC: &[u8; 8] = b"RGBINTBL";
const VERSION: u32 = 1;
const KEY_SHIFT: u32 = 27;
const PREPAID_BIT: u8 = 0b100;

/// How the card is funded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Funding {
    Credit,
    Debit,
    Charge,
}

impl Funding {
    /// `credit`, `debit` or `charge`.
    pub fn as_str(self) -> &'static str {
        match self {
            Funding::Credit => "credit",
            Funding::Debit => "debit",
            Funding::Charge => "charge",
        }
    }

    fn code(f: Option<Funding>) -> u8 {
        match f {
            None => 0,
            Some(Funding::Credit) => 1,
            Some(Funding::Debit) => 2,
            Some(Funding::Charge) => 3,
        }
    }

    fn from_code(c: u8) -> Option<Funding> {
        match c & 0b11 {
            1 => Some(Funding::Credit),
            2 => Some(Funding::Debit),
            3 => Some(Funding::Charge),
            _ => None,
        }
    }
}

/// Where a [`BinInfo`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BinSource {
    /// A row of the BIN table.
    Table,
    /// No row: the brand from the network IIN ranges, nothing else known.
    IinRange,
}

/// A BIN: its numeric value and how many digits it has (leading zeros
/// count: `002102` is `{value: 2102, digits: 6}`). `Display` zero-pads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bin {
    pub value: u32,
    pub digits: u8,
}

impl std::fmt::Display for Bin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:0width$}",
            self.value,
            width = usize::from(self.digits)
        )
    }
}

/// What the table knows about a BIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BinInfo {
    /// The matched table BIN; for [`BinSource::IinRange`], the input's first
    /// 8 digits (or all of them when it has 6 or 7).
    pub bin: Bin,
    /// Normalized brand (`visa`, `mastercard`, `amex`, …).
    pub brand: &'static str,
    pub funding: Option<Funding>,
    pub prepaid: bool,
    /// Card category, lower case (`classic`, `prepaid reloadable`, …).
    pub category: Option<&'static str>,
    pub issuer: Option<&'static str>,
    /// Issuing country, ISO 3166 alpha-2.
    pub country: Option<&'static str>,
    pub source: BinSource,
}

impl BinInfo {
    /// `card_funding` as SPEC names it: `prepaid` when prepaid, else the
    /// funding (`credit` / `debit` / `charge`).
    pub fn funding_label(&self) -> Option<&'static str> {
        if self.prepaid {
            Some("prepaid")
        } else {
            self.funding.map(Funding::as_str)
        }
    }
}

/// Looks up a BIN or PAN prefix (6+ ASCII digits) in the embedded table;
/// see the module docs. `None` for invalid input, or when neither the table
/// nor an IIN range knows it.
pub fn lookup(bin_or_pan_prefix: &str) -> Option<BinInfo> {
    match &*TABLE {
        Ok(t) => t.lookup(bin_or_pan_prefix),
        Err(_) => {
            let digits = parse_digits(bin_or_pan_prefix)?;
            iin_fallback(digits)
        }
    }
}

/// The embedded table, decoded (once). `Err` only if the embedded file is
/// corrupt.
pub fn table() -> Result<&'static BinTable, String> {
    TABLE.as_ref().map_err(Clone::clone)
}

/// Network IIN ranges used when no table row matches: `(prefix digits, low,
/// high, brand)`, inclusive, compared against the input's first `prefix
/// digits` digits; the longest matching prefix wins (so `6011` is discover,
/// `62` unionpay, and the catch-all `6` maestro only when nothing longer
/// matches). After braintree/credit-card-type (MIT).
pub const IIN_RANGES: &[(u8, u32, u32, &str)] = &[
    (1, 4, 4, "visa"),
    (2, 51, 55, "mastercard"),
    (4, 2221, 2720, "mastercard"),
    (2, 34, 34, "amex"),
    (2, 37, 37, "amex"),
    (4, 6011, 6011, "discover"),
    (3, 644, 649, "discover"),
    (2, 65, 65, "discover"),
    (4, 3528, 3589, "jcb"),
    (3, 300, 305, "diners"),
    (2, 36, 36, "diners"),
    (2, 38, 39, "diners"),
    (2, 62, 62, "unionpay"),
    (4, 2200, 2204, "mir"),
    (2, 50, 50, "maestro"),
    (2, 56, 58, "maestro"),
    (1, 6, 6, "maestro"),
];

/// Validates the input: at least 6 ASCII digits; returns the first (up to) 8.
fn parse_digits(s: &str) -> Option<&[u8]> {
    let b = s.as_bytes();
    if b.len() < 6 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    b.get(..b.len().min(8))
}

fn number(digits: &[u8]) -> u32 {
    digits
        .iter()
        .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'))
}

fn iin_fallback(digits: &[u8]) -> Option<BinInfo> {
    let mut best: Option<(u8, &'static str)> = None;
    for &(len, lo, hi, brand) in IIN_RANGES {
        let Some(prefix) = digits.get(..usize::from(len)) else {
            continue;
        };
        let p = number(prefix);
        if (lo..=hi).contains(&p) && best.is_none_or(|(l, _)| len > l) {
            best = Some((len, brand));
        }
    }
    let (_, brand) = best?;
    Some(BinInfo {
        bin: Bin {
            value: number(digits),
            digits: u8::try_from(digits.len()).unwrap_or(8),
        },
        brand,
        funding: None,
        prepaid: false,
        category: None,
        issuer: None,
        country: None,
        source: BinSource::IinRange,
    })
}

#[derive(Debug, Clone, Copy)]
struct Row {
    category: u16,
    issuer: u16,
    brand: u8,
    flags: u8,
    country: u8,
}

/// The decoded BIN table.
#[derive(Debug)]
pub struct BinTable {
    /// Bit `v` set when the 6-digit BIN `v` has a row.
    six_bits: Vec<u64>,
    /// `six_rank[w]`: set bits in `six_bits[..w]`.
    six_rank: Vec<u32>,
    /// Keys of the 7- and 8-digit rows, which follow the 6-digit ones.
    long_keys: Vec<u32>,
    rows: Vec<Row>,
    brands: Vec<Box<str>>,
    categories: Vec<Box<str>>,
    issuers: Vec<Box<str>>,
    countries: Vec<Box<str>>,
    blob_len: usize,
}

impl BinTable {
    /// Rows in the table.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Dictionary sizes: brands, categories, issuers, countries (each
    /// counting the "none" entry).
    pub fn dictionary_sizes(&self) -> [usize; 4] {
        [
            self.brands.len(),
            self.categories.len(),
            self.issuers.len(),
            self.countries.len(),
        ]
    }

    /// Bytes this table takes: the compressed blob it was decoded from plus
    /// the decoded vectors and strings (capacity, not just length).
    pub fn memory_bytes(&self) -> usize {
        let dict = |d: &Vec<Box<str>>| {
            d.capacity() * std::mem::size_of::<Box<str>>()
                + d.iter().map(|s| s.len()).sum::<usize>()
        };
        self.blob_len
            + std::mem::size_of::<Self>()
            + self.six_bits.capacity() * std::mem::size_of::<u64>()
            + self.six_rank.capacity() * std::mem::size_of::<u32>()
            + self.long_keys.capacity() * std::mem::size_of::<u32>()
            + self.rows.capacity() * std::mem::size_of::<Row>()
            + dict(&self.brands)
            + dict(&self.categories)
            + dict(&self.issuers)
            + dict(&self.countries)
    }

    /// Looks up in this table; see [`lookup`].
    pub fn lookup(&'static self, bin_or_pan_prefix: &str) -> Option<BinInfo> {
        let digits = parse_digits(bin_or_pan_prefix)?;
        for n in (6..=digits.len()).rev() {
            let prefix = digits.get(..n)?;
            let value = number(prefix);
            let key = (n as u32) << KEY_SHIFT | value;
            let index = if n == 6 {
                self.six_index(value)
            } else {
                let six = self.rows.len() - self.long_keys.len();
                self.long_keys.binary_search(&key).ok().map(|i| six + i)
            };
            if let Some(i) = index {
                return self.info(i, value, n as u8);
            }
        }
        iin_fallback(digits)
    }

    /// Row index of a 6-digit BIN, if it has a row.
    fn six_index(&self, value: u32) -> Option<usize> {
        let w = (value / 64) as usize;
        let bit = value % 64;
        let word = *self.six_bits.get(w)?;
        if word >> bit & 1 == 0 {
            return None;
        }
        let below = (word & ((1u64 << bit) - 1)).count_ones();
        Some((self.six_rank.get(w)? + below) as usize)
    }

    fn info(&'static self, i: usize, value: u32, digits: u8) -> Option<BinInfo> {
        let row = self.rows.get(i)?;
        let get = |d: &'static Vec<Box<str>>, idx: u16| -> Option<&'static str> {
            (idx != 0)
                .then(|| d.get(usize::from(idx)).map(|s| &**s))
                .flatten()
        };
        Some(BinInfo {
            bin: Bin { value, digits },
            brand: get(&self.brands, u16::from(row.brand)).unwrap_or(""),
            funding: Funding::from_code(row.flags),
            prepaid: row.flags & PREPAID_BIT != 0,
            category: get(&self.categories, row.category),
            issuer: get(&self.issuers, row.issuer),
            country: get(&self.countries, u16::from(row.country)),
            source: BinSource::Table,
        })
    }

    /// Decodes a `bins.bin` file (gzip stream; see the module docs).
    pub fn decode(gz: &[u8]) -> Result<Self, String> {
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut raw)
            .map_err(|e| format!("bins.bin: gunzip: {e}"))?;
        let mut r = Reader { buf: &raw, pos: 0 };
        if r.take(8)? != MAGIC {
            return Err("bins.bin: bad magic".into());
        }
        let version = r.u32()?;
        if version != VERSION {
            return Err(format!("bins.bin: version {version}, expected {VERSION}"));
        }
        let n = r.u32()? as usize;
        let brands = r.dictionary(256)?;
        let categories = r.dictionary(65_536)?;
        let issuers = r.dictionary(65_536)?;
        let countries = r.dictionary(256)?;

        let mut keys = Vec::with_capacity(n);
        let mut key = 0u32;
        for d in r.take(n * 4)?.chunks_exact(4) {
            let delta = u32::from_le_bytes([d[0], d[1], d[2], d[3]]);
            if delta == 0 && !keys.is_empty() {
                return Err("bins.bin: keys not strictly increasing".into());
            }
            key = key.checked_add(delta).ok_or("bins.bin: key overflow")?;
            let digits = key >> KEY_SHIFT;
            if !(6..=8).contains(&digits) || (key & ((1 << KEY_SHIFT) - 1)) >= 10u32.pow(digits) {
                return Err(format!("bins.bin: bad key {key:#x}"));
            }
            keys.push(key);
        }
        let brand = r.take(n)?;
        let flags = r.take(n)?;
        let country = r.take(n)?;
        let category = r.take(n * 2)?;
        let issuer = r.take(n * 2)?;
        if r.pos != raw.len() {
            return Err("bins.bin: trailing bytes".into());
        }
        let mut rows = Vec::with_capacity(n);
        for i in 0..n {
            let row = Row {
                brand: brand[i],
                flags: flags[i],
                country: country[i],
                category: u16::from_le_bytes([category[2 * i], category[2 * i + 1]]),
                issuer: u16::from_le_bytes([issuer[2 * i], issuer[2 * i + 1]]),
            };
            if usize::from(row.brand) >= brands.len()
                || usize::from(row.country) >= countries.len()
                || usize::from(row.category) >= categories.len()
                || usize::from(row.issuer) >= issuers.len()
                || row.flags > 0b111
            {
                return Err(format!("bins.bin: row {i} out of range"));
            }
            rows.push(row);
        }
        let six = keys.partition_point(|&k| k >> KEY_SHIFT == 6);
        let mut six_bits = vec![0u64; 1_000_000 / 64];
        for &k in &keys[..six] {
            let v = (k & ((1 << KEY_SHIFT) - 1)) as usize;
            six_bits[v / 64] |= 1 << (v % 64);
        }
        let mut six_rank = Vec::with_capacity(six_bits.len());
        let mut count = 0u32;
        for w in &six_bits {
            six_rank.push(count);
            count += w.count_ones();
        }
        Ok(BinTable {
            six_bits,
            six_rank,
            long_keys: keys[six..].to_vec(),
            rows,
            brands,
            categories,
            issuers,
            countries,
            blob_len: gz.len(),
        })
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).ok_or("bins.bin: truncated")?;
        let s = self.buf.get(self.pos..end).ok_or("bins.bin: truncated")?;
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn dictionary(&mut self, max: usize) -> Result<Vec<Box<str>>, String> {
        let count = self.u32()? as usize;
        if count == 0 || count > max {
            return Err(format!("bins.bin: dictionary of {count} entries"));
        }
        let mut out: Vec<Box<str>> = Vec::with_capacity(count);
        for _ in 0..count {
            let len = self.take(2)?;
            let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
            let s = std::str::from_utf8(self.take(len)?).map_err(|e| format!("bins.bin: {e}"))?;
            out.push(Box::from(s));
        }
        if out.first().is_some_and(|s| !s.is_empty()) {
            return Err("bins.bin: dictionary entry 0 must be empty".into());
        }
        Ok(out)
    }
}

/// One normalized table row, as the generator writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRow {
    pub bin: Bin,
    pub brand: String,
    pub funding: Option<Funding>,
    pub prepaid: bool,
    pub category: Option<String>,
    pub issuer: Option<String>,
    pub country: Option<String>,
}

/// The normalized brand name (see the module docs).
pub fn normalize_brand(raw: &str) -> String {
    let upper = raw.trim().to_ascii_uppercase();
    match upper.as_str() {
        "AMERICAN EXPRESS" => "amex".into(),
        "DINERS CLUB INTERNATIONAL" => "diners".into(),
        "CHINA UNION PAY" => "unionpay".into(),
        "NSPK MIR" => "mir".into(),
        _ => raw.trim().to_lowercase(),
    }
}

/// Normalizes one source row (`BIN, Brand, Type, Category, Issuer, isoCode2`
/// of bin-list-data); `Err` when the BIN is not 6–8 digits.
pub fn normalize_source_row(
    bin: &str,
    brand: &str,
    card_type: &str,
    category: &str,
    issuer: &str,
    iso2: &str,
) -> Result<TableRow, String> {
    let bin = bin.trim();
    let digits = parse_digits(bin)
        .filter(|d| d.len() == bin.len())
        .ok_or_else(|| format!("BIN {bin:?} is not 6-8 digits"))?;
    let t = card_type.trim().to_ascii_uppercase();
    let funding = match t.as_str() {
        "CREDIT" => Some(Funding::Credit),
        "DEBIT" => Some(Funding::Debit),
        "CHARGE CARD" | "CHARGE" => Some(Funding::Charge),
        _ => None,
    };
    let prepaid = t.contains("PREPAID") || category.to_ascii_uppercase().contains("PREPAID");
    let non_empty = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
    let iso2 = iso2.trim();
    Ok(TableRow {
        bin: Bin {
            value: number(digits),
            digits: digits.len() as u8,
        },
        brand: normalize_brand(brand),
        funding,
        prepaid,
        category: non_empty(category).map(|c| c.to_lowercase()),
        issuer: non_empty(issuer),
        country: (iso2.len() == 2 && iso2.bytes().all(|b| b.is_ascii_alphabetic()))
            .then(|| iso2.to_ascii_uppercase()),
    })
}

/// Encodes rows into a `bins.bin` file (sorted here; duplicate BINs and
/// over-full dictionaries are errors).
pub fn encode_table(mut rows: Vec<TableRow>) -> Result<Vec<u8>, String> {
    let key = |r: &TableRow| u32::from(r.bin.digits) << KEY_SHIFT | r.bin.value;
    rows.sort_by_key(key);
    if let Some(w) = rows.windows(2).find(|w| key(&w[0]) == key(&w[1])) {
        return Err(format!("duplicate BIN {}", w[0].bin));
    }
    struct Dict {
        index: std::collections::HashMap<String, usize>,
        entries: Vec<String>,
    }
    impl Dict {
        fn new() -> Self {
            Dict {
                index: [(String::new(), 0)].into(),
                entries: vec![String::new()],
            }
        }
        fn id(&mut self, s: Option<&str>) -> usize {
            let s = s.unwrap_or("");
            if let Some(&i) = self.index.get(s) {
                return i;
            }
            self.entries.push(s.to_string());
            self.index.insert(s.to_string(), self.entries.len() - 1);
            self.entries.len() - 1
        }
        fn write(&self, out: &mut Vec<u8>, max: usize, what: &str) -> Result<(), String> {
            if self.entries.len() > max {
                return Err(format!("{} {what} exceed {max}", self.entries.len()));
            }
            out.extend((self.entries.len() as u32).to_le_bytes());
            for e in &self.entries {
                let len = u16::try_from(e.len()).map_err(|_| format!("{what} too long: {e}"))?;
                out.extend(len.to_le_bytes());
                out.extend(e.as_bytes());
            }
            Ok(())
        }
    }
    let (mut brands, mut cats, mut issuers, mut countries) =
        (Dict::new(), Dict::new(), Dict::new(), Dict::new());
    let ids: Vec<[usize; 4]> = rows
        .iter()
        .map(|r| {
            [
                brands.id(Some(&r.brand)),
                cats.id(r.category.as_deref()),
                issuers.id(r.issuer.as_deref()),
                countries.id(r.country.as_deref()),
            ]
        })
        .collect();
    let n = u32::try_from(rows.len()).map_err(|_| "too many rows")?;
    let mut out = Vec::new();
    out.extend(MAGIC);
    out.extend(VERSION.to_le_bytes());
    out.extend(n.to_le_bytes());
    brands.write(&mut out, 256, "brands")?;
    cats.write(&mut out, 65_536, "categories")?;
    issuers.write(&mut out, 65_536, "issuers")?;
    countries.write(&mut out, 256, "countries")?;
    let mut prev = 0u32;
    for r in &rows {
        out.extend((key(r) - prev).to_le_bytes());
        prev = key(r);
    }
    out.extend(ids.iter().map(|i| i[0] as u8));
    out.extend(
        rows.iter()
            .map(|r| Funding::code(r.funding) | if r.prepaid { PREPAID_BIT } else { 0 }),
    );
    out.extend(ids.iter().map(|i| i[3] as u8));
    for i in &ids {
        out.extend((i[1] as u16).to_le_bytes());
    }
    for i in &ids {
        out.extend((i[2] as u16).to_le_bytes());
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&out).map_err(|e| e.to_string())?;
    gz.finish().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(bin: &str, brand: &str, ty: &str, cat: &str, iss: &str, cc: &str) -> TableRow {
        normalize_source_row(bin, brand, ty, cat, iss, cc).unwrap()
    }

    fn small_table(rows: Vec<TableRow>) -> &'static BinTable {
        Box::leak(Box::new(
            BinTable::decode(&encode_table(rows).unwrap()).unwrap(),
        ))
    }

    #[test]
    fn embedded_table_decodes() {
        let t = table().unwrap();
        assert_eq!(t.len(), 374_788);
        assert_eq!(t.dictionary_sizes(), [72, 434, 18_373, 226]);
        let info = lookup("002102").unwrap();
        assert_eq!(info.bin.to_string(), "002102");
        assert_eq!(info.brand, "private label");
        assert_eq!(info.funding, Some(Funding::Credit));
        assert_eq!(info.issuer, Some("CHINA MERCHANTS BANK"));
        assert_eq!(info.country, Some("CN"));
        assert_eq!(info.category, Some("standard"));
        assert_eq!(info.source, BinSource::Table);
    }

    #[test]
    fn normalization() {
        let r = row(
            "411111",
            "AMERICAN EXPRESS",
            "CHARGE CARD",
            "PREPAID Classic",
            "",
            "us",
        );
        assert_eq!(r.brand, "amex");
        assert_eq!(r.funding, Some(Funding::Charge));
        assert!(r.prepaid);
        assert_eq!(r.category.as_deref(), Some("prepaid classic"));
        assert_eq!(r.issuer, None);
        assert_eq!(r.country.as_deref(), Some("US"));
        let r = row("12345678", "VISA/DANKORT", "PREPAID", "", "BANK", "");
        assert_eq!(
            (r.brand.as_str(), r.funding, r.prepaid),
            ("visa/dankort", None, true)
        );
        assert_eq!(
            (r.bin.value, r.bin.digits, r.country),
            (12_345_678, 8, None)
        );
        assert_eq!(normalize_brand("DINERS CLUB INTERNATIONAL"), "diners");
        assert_eq!(normalize_brand("CHINA UNION PAY"), "unionpay");
        assert_eq!(normalize_brand("NSPK MIR"), "mir");
        assert_eq!(normalize_brand("MASTERCARD"), "mastercard");
        assert!(normalize_source_row("41111", "VISA", "", "", "", "").is_err());
        assert!(normalize_source_row("123456789", "VISA", "", "", "", "").is_err());
    }

    #[test]
    fn eight_digits_preferred_over_six() {
        let t = small_table(vec![
            row("411111", "VISA", "DEBIT", "CLASSIC", "SIX BANK", "PL"),
            row("41111122", "VISA", "CREDIT", "PREPAID", "EIGHT BANK", "NL"),
            row("00000001", "JCB", "CREDIT", "", "", "JP"),
        ]);
        let eight = t.lookup("4111112233334444").unwrap();
        assert_eq!(eight.bin.to_string(), "41111122");
        assert_eq!(
            (eight.issuer, eight.country),
            (Some("EIGHT BANK"), Some("NL"))
        );
        assert_eq!(
            (eight.funding, eight.prepaid),
            (Some(Funding::Credit), true)
        );
        assert_eq!(eight.funding_label(), Some("prepaid"));
        let six = t.lookup("41111133").unwrap();
        assert_eq!(six.bin.to_string(), "411111");
        assert_eq!((six.issuer, six.country), (Some("SIX BANK"), Some("PL")));
        assert_eq!(six.funding_label(), Some("debit"));
        assert_eq!(t.lookup("411111").unwrap().bin.to_string(), "411111");
        assert_eq!(t.lookup("0000000199").unwrap().brand, "jcb");
        // 000000 (6 digits) is not 00000001 (8 digits).
        assert_eq!(t.lookup("000000"), None);
        assert_eq!(t.lookup("4111120000").unwrap().source, BinSource::IinRange);
    }

    #[test]
    fn unknown_bins_fall_back_to_iin_ranges() {
        let t = small_table(vec![row("411111", "VISA", "DEBIT", "", "", "PL")]);
        for (input, brand) in [
            ("400000", "visa"),
            ("510000", "mastercard"),
            ("222100", "mastercard"),
            ("272099", "mastercard"),
            ("340000", "amex"),
            ("370000", "amex"),
            ("601100", "discover"),
            ("644000", "discover"),
            ("650000", "discover"),
            ("352800", "jcb"),
            ("358999", "jcb"),
            ("300000", "diners"),
            ("360000", "diners"),
            ("390000", "diners"),
            ("620000", "unionpay"),
            ("220000", "mir"),
            ("500000", "maestro"),
            ("570000", "maestro"),
            ("630000", "maestro"),
            ("601200", "maestro"),
        ] {
            let info = t.lookup(input).unwrap_or_else(|| panic!("{input}"));
            assert_eq!(
                (info.brand, info.source),
                (brand, BinSource::IinRange),
                "{input}"
            );
            assert_eq!(
                (info.funding, info.issuer, info.country),
                (None, None, None)
            );
            assert_eq!(info.bin.to_string(), input);
        }
        for none in ["100000", "272100", "350000", "700000", "999999"] {
            assert_eq!(t.lookup(none), None, "{none}");
        }
        // The embedded table too: a BIN absent from it.
        assert_eq!(lookup("799999"), None);
        let absent = lookup("4203541234").unwrap();
        assert_eq!((absent.brand, absent.source), ("visa", BinSource::IinRange));
        assert_eq!(absent.bin.to_string(), "42035412");
        assert_eq!(lookup("999999").map(|i| i.source), Some(BinSource::Table));
    }

    #[test]
    fn invalid_input_is_none() {
        for bad in [
            "",
            "41111",
            "4111a1",
            "411 111",
            "-411111",
            "４１１１１１",
            "411111x",
        ] {
            assert_eq!(lookup(bad), None, "{bad:?}");
        }
    }

    /// Every 187th row of the source CSV (about 2,000 spread over the file)
    /// reads back as the source says, after normalization.
    #[test]
    fn matches_source_csv_sample() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/bins.csv");
        let Ok(text) = std::fs::read_to_string(path) else {
            eprintln!("SKIPPED matches_source_csv_sample: {path} not found");
            return;
        };
        let mut lines = text.lines();
        let header = super::super::parse_csv_line(lines.next().unwrap());
        assert_eq!(header[..5], ["BIN", "Brand", "Type", "Category", "Issuer"]);
        assert_eq!(header[7], "isoCode2");
        let mut checked = 0;
        for line in lines.step_by(187) {
            let f = super::super::parse_csv_line(line);
            let (bin, brand, ty, cat, iss, cc) = (&f[0], &f[1], &f[2], &f[3], &f[4], &f[7]);
            let info = lookup(bin).unwrap_or_else(|| panic!("{bin} missing"));
            assert_eq!(info.source, BinSource::Table, "{bin}");
            assert_eq!(info.bin.to_string(), *bin);
            assert_eq!(info.brand, normalize_brand(brand), "{bin}");
            if ![
                "AMERICAN EXPRESS",
                "DINERS CLUB INTERNATIONAL",
                "CHINA UNION PAY",
                "NSPK MIR",
            ]
            .contains(&brand.as_str())
            {
                assert_eq!(info.brand, brand.to_lowercase(), "{bin}");
            }
            let funding = match ty.as_str() {
                "CREDIT" => Some(Funding::Credit),
                "DEBIT" => Some(Funding::Debit),
                "CHARGE CARD" => Some(Funding::Charge),
                _ => None,
            };
            assert_eq!(info.funding, funding, "{bin}");
            assert_eq!(info.prepaid, cat.contains("PREPAID"), "{bin}");
            fn opt(s: &str) -> Option<&str> {
                (!s.is_empty()).then_some(s)
            }
            assert_eq!(info.issuer, opt(iss), "{bin}");
            assert_eq!(info.country, opt(cc), "{bin}");
            assert_eq!(
                info.category,
                opt(cat).map(str::to_lowercase).as_deref(),
                "{bin}"
            );
            checked += 1;
        }
        assert!(checked >= 2000, "{checked}");
    }
}
