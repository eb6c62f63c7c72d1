//! A subscriber's lists (blocked cards, trusted users, sanctioned countries,
//! …) as rules read them: `lists.<name>` is `true` when this transaction's
//! value of the list's kind is on the list and the entry has not expired.
//!
//! Pure: the service layer keeps each subscriber's [`ListIndex`] in memory and
//! hands the core the names that matched ([`ListHits`], the `lists` feature),
//! so a decision costs a hash probe per list (and, for an IP list, one per
//! prefix length it holds), never a query.
//!
//! Values are normalized once, when an entry is added ([`normalize`]), so
//! matching compares like with like.

pub use super::features::ListHits;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::str::FromStr;

use super::features::Input;
use super::scrub::{luhn_valid, masked_id};

/// What a list holds, and so which value of a transaction it is matched with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListKind {
    /// `email`, lower case.
    Email,
    /// `email_domain`, lower case.
    EmailDomain,
    /// The merchant's `ip_address`, else the device's; entries are addresses
    /// or CIDR ranges.
    Ip,
    /// `bin`: an entry of 6 to 8 digits matches every BIN it begins.
    Bin,
    /// The card as its first 6 digits and last 4 (`411111:1111`).
    Card,
    /// The device's visitor id.
    Device,
    /// `user_id`.
    User,
    /// Any of `card_country`, `ip_country`, `billing_country`,
    /// `shipping_country`.
    Country,
}

impl ListKind {
    pub const ALL: [ListKind; 8] = [
        Self::Email,
        Self::EmailDomain,
        Self::Ip,
        Self::Bin,
        Self::Card,
        Self::Device,
        Self::User,
        Self::Country,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::EmailDomain => "email_domain",
            Self::Ip => "ip",
            Self::Bin => "bin",
            Self::Card => "card",
            Self::Device => "device",
            Self::User => "user",
            Self::Country => "country",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// The longest value an entry may be given (before normalization).
pub const MAX_VALUE: usize = 256;

/// Whether `name` may name a list: `[a-z0-9_]{1,64}`.
pub fn is_list_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A value as a list of `kind` keeps it, or why it does not fit (the message
/// never repeats the value: it may be a card number).
pub fn normalize(kind: ListKind, raw: &str) -> Result<String, &'static str> {
    let value = raw.trim();
    if value.is_empty() {
        return Err("must not be empty");
    }
    if value.chars().count() > MAX_VALUE {
        return Err("must be at most 256 characters");
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters");
    }
    match kind {
        ListKind::Email => email(value),
        ListKind::EmailDomain => domain(value.strip_prefix('@').unwrap_or(value))
            .ok_or("expected an email domain such as example.com"),
        ListKind::Ip => Ok(Net::parse(value)
            .ok_or("expected an IPv4 or IPv6 address or a CIDR range such as 192.0.2.0/24")?
            .to_string()),
        ListKind::Bin => {
            if (6..=8).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit()) {
                Ok(value.to_owned())
            } else {
                Err("expected a BIN of 6 to 8 digits")
            }
        }
        ListKind::Card => card(value).ok_or(
            "expected a card number, a masked card number (411111******1111) or BIN:last4 (411111:1111)",
        ),
        // Identifiers are kept as scoring keeps them: a card number in one is
        // masked, so the entry matches and no full number is stored.
        ListKind::Device | ListKind::User => Ok(masked_id(value).into_owned()),
        ListKind::Country => {
            if value.len() == 2 && value.bytes().all(|b| b.is_ascii_alphabetic()) {
                Ok(value.to_ascii_uppercase())
            } else {
                Err("expected an ISO 3166 alpha-2 country code such as \"US\"")
            }
        }
    }
}

fn email(value: &str) -> Result<String, &'static str> {
    const WHY: &str = "expected an email address such as jane@example.com";
    let (local, host) = value.rsplit_once('@').ok_or(WHY)?;
    if local.is_empty() || local.contains(char::is_whitespace) {
        return Err(WHY);
    }
    let host = domain(host).ok_or(WHY)?;
    Ok(format!("{}@{host}", local.to_lowercase()))
}

/// A domain in lower case: labels without spaces, `@` or `/`.
fn domain(value: &str) -> Option<String> {
    let value = value.strip_suffix('.').unwrap_or(value).to_lowercase();
    let fits = !value.is_empty()
        && value.len() <= 253
        && value.split('.').all(|label| {
            !label.is_empty()
                && !label
                    .chars()
                    .any(|c| c.is_whitespace() || matches!(c, '@' | '/' | '\\' | ':'))
        });
    fits.then_some(value)
}

/// `bin6:last4` from `BIN:last4`, a full card number (Luhn-checked, spaces
/// and dashes allowed) or a masked one; never more of the number than that.
fn card(value: &str) -> Option<String> {
    let compact: String = value.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let bytes = compact.as_bytes();
    let keep = |head: &[u8], last4: &[u8]| {
        let ok = (6..=8).contains(&head.len())
            && last4.len() == 4
            && head.iter().chain(last4).all(u8::is_ascii_digit);
        ok.then(|| {
            format!(
                "{}:{}",
                String::from_utf8_lossy(&head[..6]),
                String::from_utf8_lossy(last4)
            )
        })
    };
    if let Some((head, last4)) = compact.split_once(':') {
        return keep(head.as_bytes(), last4.as_bytes());
    }
    if bytes.iter().all(u8::is_ascii_digit) {
        return ((13..=19).contains(&bytes.len()) && luhn_valid(bytes))
            .then(|| keep(&bytes[..6], &bytes[bytes.len() - 4..]))
            .flatten();
    }
    // Masked: digits, mask characters, the last four digits.
    let head = compact.chars().take_while(char::is_ascii_digit).count();
    let tail = compact
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .count();
    let middle = compact.get(head..compact.len().checked_sub(tail)?)?;
    if middle.is_empty() || !middle.chars().all(|c| matches!(c, '*' | 'x' | 'X' | '•')) {
        return None;
    }
    keep(&bytes[..head], &bytes[bytes.len() - tail..])
}

/// An address or a network: the address with its host bits cleared, and the
/// prefix length (32 or 128 for one address). IPv4 addresses inside IPv6
/// (`::ffff:192.0.2.1`) are read as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Net {
    v6: bool,
    prefix: u8,
    bits: u128,
}

impl Net {
    fn width(v6: bool) -> u8 {
        if v6 {
            128
        } else {
            32
        }
    }

    fn address(ip: IpAddr) -> (bool, u128) {
        match ip.to_canonical() {
            IpAddr::V4(v4) => (false, u128::from(u32::from(v4))),
            IpAddr::V6(v6) => (true, u128::from(v6)),
        }
    }

    fn masked(v6: bool, bits: u128, prefix: u8) -> u128 {
        let width = Self::width(v6);
        let host = u32::from(width - prefix);
        let mask = if host >= 128 {
            0
        } else {
            (u128::MAX << host) & (u128::MAX >> (128 - u32::from(width)))
        };
        bits & mask
    }

    fn parse(value: &str) -> Option<Net> {
        let (addr, prefix) = match value.split_once('/') {
            Some((addr, prefix)) => {
                if prefix.is_empty()
                    || prefix.len() > 3
                    || !prefix.bytes().all(|b| b.is_ascii_digit())
                {
                    return None;
                }
                (addr, Some(prefix.parse::<u8>().ok()?))
            }
            None => (value, None),
        };
        let ip = IpAddr::from_str(addr).ok()?;
        // A mapped IPv4 address with an IPv6 prefix: the prefix counts the
        // 96 bits before the IPv4 part.
        let mapped_prefix = match (ip, prefix) {
            (IpAddr::V6(v6), Some(p)) if v6.to_ipv4_mapped().is_some() => Some(p.checked_sub(96)?),
            _ => prefix,
        };
        let (v6, bits) = Self::address(ip);
        let prefix = mapped_prefix.unwrap_or(Self::width(v6));
        if prefix > Self::width(v6) {
            return None;
        }
        Some(Net {
            v6,
            prefix,
            bits: Self::masked(v6, bits, prefix),
        })
    }
}

impl std::fmt::Display for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ip = if self.v6 {
            IpAddr::V6(self.bits.into())
        } else {
            // Only the low 32 bits are ever set for IPv4.
            #[allow(clippy::cast_possible_truncation)]
            IpAddr::V4((self.bits as u32).into())
        };
        if self.prefix == Self::width(self.v6) {
            write!(f, "{ip}")
        } else {
            write!(f, "{ip}/{}", self.prefix)
        }
    }
}

/// When an entry stops matching (Unix milliseconds); `None`: never.
type Expiry = Option<i64>;

fn live(expiry: Expiry, now: i64) -> bool {
    expiry.is_none_or(|at| at > now)
}

/// One list, ready to match.
#[derive(Debug, Default)]
struct Compiled {
    name: String,
    kind: Option<ListKind>,
    values: HashMap<Box<str>, Expiry>,
    /// IP lists: every network, and the (family, prefix) pairs they use, so
    /// an address is probed once per prefix length the list holds.
    nets: HashMap<Net, Expiry>,
    prefixes: Vec<(bool, u8)>,
}

impl Compiled {
    fn on(&self, value: &str, now: i64) -> bool {
        self.values.get(value).is_some_and(|e| live(*e, now))
    }

    fn ip_on(&self, ip: &str, now: i64) -> bool {
        let Ok(ip) = IpAddr::from_str(ip.trim()) else {
            return false;
        };
        let (v6, bits) = Net::address(ip);
        self.prefixes
            .iter()
            .filter(|(f, _)| *f == v6)
            .any(|&(_, prefix)| {
                let net = Net {
                    v6,
                    prefix,
                    bits: Net::masked(v6, bits, prefix),
                };
                self.nets.get(&net).is_some_and(|e| live(*e, now))
            })
    }

    fn matches(&self, input: &Input, now: i64) -> bool {
        let Some(kind) = self.kind else {
            return false;
        };
        match kind {
            ListKind::Email => input
                .email
                .as_deref()
                .is_some_and(|e| self.on(&e.trim().to_lowercase(), now)),
            ListKind::EmailDomain => input
                .email_domain
                .as_deref()
                .is_some_and(|d| self.on(&d.to_lowercase(), now)),
            ListKind::Ip => input
                .ip_address
                .as_deref()
                .or(input.device.ip_address.as_deref())
                .is_some_and(|ip| self.ip_on(ip, now)),
            ListKind::Bin => input.bin.as_deref().is_some_and(|bin| {
                (6..=bin.len().min(8)).any(|n| bin.get(..n).is_some_and(|p| self.on(p, now)))
            }),
            ListKind::Card => match (input.bin.as_deref(), input.last4.as_deref()) {
                (Some(bin), Some(last4)) => bin
                    .get(..6)
                    .is_some_and(|bin| self.on(&format!("{bin}:{last4}"), now)),
                _ => false,
            },
            ListKind::Device => input
                .device
                .visitor_id
                .as_deref()
                .is_some_and(|v| self.on(v, now)),
            ListKind::User => input.user_id.as_deref().is_some_and(|u| self.on(u, now)),
            ListKind::Country => [
                &input.card_country,
                &input.ip_country,
                &input.billing_country,
                &input.shipping_country,
            ]
            .into_iter()
            .flatten()
            .any(|c| self.on(&c.to_ascii_uppercase(), now)),
        }
    }
}

/// A subscriber's lists, built from what the store holds.
#[derive(Debug, Default)]
pub struct ListIndex {
    lists: Vec<Compiled>,
}

impl ListIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a list of `kind` (its stored text; an unknown one never matches)
    /// with its entries (normalized values and their expiry).
    pub fn add_list<'a>(
        &mut self,
        name: &str,
        kind: &str,
        entries: impl IntoIterator<Item = (&'a str, Option<i64>)>,
    ) {
        let kind = ListKind::parse(kind);
        let mut list = Compiled {
            name: name.to_owned(),
            kind,
            ..Compiled::default()
        };
        let mut prefixes = HashSet::new();
        for (value, expiry) in entries {
            if kind == Some(ListKind::Ip) {
                if let Some(net) = Net::parse(value) {
                    prefixes.insert((net.v6, net.prefix));
                    list.nets.insert(net, expiry);
                }
            } else {
                list.values.insert(value.into(), expiry);
            }
        }
        list.prefixes = prefixes.into_iter().collect();
        // Longest prefixes first: a single address is the likeliest hit.
        list.prefixes
            .sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        self.lists.push(list);
    }

    /// The names of the lists this transaction is on at `now`.
    pub fn hits(&self, input: &Input, now: i64) -> ListHits {
        ListHits::new(
            self.lists
                .iter()
                .filter(|l| l.matches(input, now))
                .map(|l| l.name.clone()),
        )
    }

    /// Whether `value` (as a list of the kind keeps it; an address for an IP
    /// list) is on the list `name` and has not expired at `now`.
    pub fn holds(&self, name: &str, value: &str, now: i64) -> bool {
        self.lists.iter().filter(|l| l.name == name).any(|l| {
            if l.kind == Some(ListKind::Ip) {
                l.ip_on(value, now)
            } else {
                l.on(value, now)
            }
        })
    }

    pub fn is_empty(&self) -> bool {
        self.lists.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn norm(kind: ListKind, value: &str) -> Result<String, &'static str> {
        normalize(kind, value)
    }

    #[test]
    fn values_are_normalized_for_their_kind() {
        use ListKind::*;
        assert_eq!(
            norm(Email, " Jane.Doe@Example.COM ").unwrap(),
            "jane.doe@example.com"
        );
        assert!(norm(Email, "no-at-sign").is_err());
        assert!(norm(Email, "@example.com").is_err());
        assert!(norm(Email, "a b@example.com").is_err());
        assert_eq!(
            norm(EmailDomain, "@Mailinator.COM.").unwrap(),
            "mailinator.com"
        );
        assert!(norm(EmailDomain, "a@b.com").is_err());
        assert!(norm(EmailDomain, "a..b").is_err());
        assert_eq!(norm(Ip, "192.0.2.10").unwrap(), "192.0.2.10");
        assert_eq!(norm(Ip, "10.1.2.3/8").unwrap(), "10.0.0.0/8");
        assert_eq!(norm(Ip, "10.1.2.3/32").unwrap(), "10.1.2.3");
        assert_eq!(norm(Ip, "2001:DB8:0:0::1").unwrap(), "2001:db8::1");
        assert_eq!(norm(Ip, "2001:db8::1/32").unwrap(), "2001:db8::/32");
        assert_eq!(norm(Ip, "::ffff:192.0.2.1").unwrap(), "192.0.2.1");
        assert_eq!(norm(Ip, "::ffff:192.0.2.1/120").unwrap(), "192.0.2.0/24");
        assert_eq!(norm(Ip, "0.0.0.0/0").unwrap(), "0.0.0.0/0");
        for bad in [
            "1.2.3.4/33",
            "::1/129",
            "1.2.3",
            "1.2.3.4/",
            "1.2.3.4/+8",
            "host",
        ] {
            assert!(norm(Ip, bad).is_err(), "{bad}");
        }
        assert_eq!(norm(Bin, "41111111").unwrap(), "41111111");
        assert!(norm(Bin, "41111").is_err());
        assert!(norm(Bin, "4111a1").is_err());
        assert_eq!(norm(Card, "4111 1111 1111 1111").unwrap(), "411111:1111");
        assert_eq!(norm(Card, "4111-1111-1111-1111").unwrap(), "411111:1111");
        assert_eq!(norm(Card, "41111111:1111").unwrap(), "411111:1111");
        assert_eq!(norm(Card, "411111******1111").unwrap(), "411111:1111");
        assert_eq!(norm(Card, "378282*****0005").unwrap(), "378282:0005");
        assert!(norm(Card, "4111111111111112").is_err(), "fails Luhn");
        assert!(norm(Card, "4111:11111").is_err());
        assert!(norm(Card, "41111a******1111").is_err());
        assert_eq!(norm(Country, "us").unwrap(), "US");
        assert!(norm(Country, "USA").is_err());
        assert_eq!(norm(User, " u-1 ").unwrap(), "u-1");
        assert_eq!(norm(User, "4111111111111111").unwrap(), "41111111****1111");
        assert_eq!(norm(Device, "v1").unwrap(), "v1");
        assert!(norm(Device, " ").is_err());
        assert!(norm(Device, "a\u{7}b").is_err());
        assert!(norm(Device, &"x".repeat(257)).is_err());
    }

    #[test]
    fn a_refusal_never_repeats_a_card_number() {
        let err = norm(ListKind::Card, "4111111111111112").unwrap_err();
        assert!(!err.contains("4111111111111112"), "{err}");
    }

    #[test]
    fn names_are_lower_case_digits_and_underscores() {
        assert!(is_list_name("blocked_cards_2"));
        assert!(is_list_name(&"a".repeat(64)));
        for bad in ["", "Blocked", "a-b", "a b", "é", &"a".repeat(65)] {
            assert!(!is_list_name(bad), "{bad}");
        }
    }

    fn input() -> Input {
        let mut input = super::super::sample_input();
        input.card_country = Some("GB".into());
        input
    }

    #[test]
    fn each_kind_matches_its_value_of_the_transaction() {
        let mut index = ListIndex::new();
        let cases: [(&str, &str, &str); 8] = [
            ("e", "email", "jane@example.com"),
            ("d", "email_domain", "example.com"),
            ("i", "ip", "192.0.2.0/24"),
            ("b", "bin", "411111"),
            ("c", "card", "411111:1111"),
            ("v", "device", "v1"),
            ("u", "user", "u1"),
            ("k", "country", "GB"),
        ];
        for (name, kind, value) in cases {
            index.add_list(name, kind, [(value, None)]);
        }
        index.add_list("other_user", "user", [("u2", None)]);
        index.add_list("empty", "email", []);
        index.add_list("odd", "no_such_kind", [("u1", None)]);
        let hits = index.hits(&input(), 0);
        assert_eq!(hits.names(), ["b", "c", "d", "e", "i", "k", "u", "v"]);
        assert!(hits.contains("c") && !hits.contains("other_user"));
        assert_eq!(
            serde_json::to_value(&hits).unwrap(),
            serde_json::json!({"b": true, "c": true, "d": true, "e": true, "i": true, "k": true, "u": true, "v": true})
        );
    }

    #[test]
    fn ip_lists_match_by_range_and_fall_back_to_the_device_ip() {
        let mut index = ListIndex::new();
        index.add_list(
            "nets",
            "ip",
            [
                ("10.0.0.0/8", None),
                ("2001:db8::/32", None),
                ("203.0.113.7", None),
            ],
        );
        let mut input = input();
        for (ip, on) in [
            ("10.200.3.4", true),
            ("11.0.0.1", false),
            ("203.0.113.7", true),
            ("203.0.113.8", false),
            ("2001:db8:1::5", true),
            ("2001:db9::1", false),
            ("::ffff:10.1.1.1", true),
            ("not an ip", false),
        ] {
            input.ip_address = Some(ip.into());
            assert_eq!(index.hits(&input, 0).contains("nets"), on, "{ip}");
        }
        input.ip_address = None;
        input.device.ip_address = Some("10.9.9.9".into());
        assert!(index.hits(&input, 0).contains("nets"), "the device's IP");
    }

    #[test]
    fn an_expired_entry_no_longer_matches() {
        let mut index = ListIndex::new();
        index.add_list("users", "user", [("u1", Some(1_000))]);
        assert!(index.hits(&input(), 999).contains("users"));
        assert!(!index.hits(&input(), 1_000).contains("users"));
    }

    #[test]
    fn a_bin_entry_matches_the_longer_bins_it_begins_and_cards_match_on_six_digits() {
        let mut index = ListIndex::new();
        index.add_list("bins", "bin", [("4111111", None)]);
        index.add_list("cards", "card", [("411111:1111", None)]);
        let mut input = input();
        input.bin = Some("41111112".into());
        let hits = index.hits(&input, 0);
        assert!(hits.contains("bins") && hits.contains("cards"));
        input.bin = Some("411111".into());
        let hits = index.hits(&input, 0);
        assert!(
            !hits.contains("bins"),
            "a 7-digit entry cannot say of a 6-digit BIN"
        );
        input.last4 = None;
        assert!(!index.hits(&input, 0).contains("cards"));
    }

    #[test]
    fn hits_read_back_from_the_stored_input() {
        let hits = ListHits::new(["b".to_owned(), "a".to_owned(), "a".to_owned()]);
        let text = serde_json::to_string(&hits).unwrap();
        assert_eq!(text, r#"{"a":true,"b":true}"#);
        let back: ListHits = serde_json::from_str(r#"{"a":true,"b":true,"c":false}"#).unwrap();
        assert_eq!(back, hits);
    }
}
