//! The world the population lives in: countries and their currencies, the
//! networks shoppers connect from, email domains, and card BINs drawn from
//! riskgate's own BIN table. Sources and choices: `docs/simulated-traffic.md`.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use super::rng::Rng;
use crate::decision::reference::bins;

/// The merchant's home markets, with their share of its honest shoppers and
/// the currency it charges there.
pub const HOME_MARKETS: &[(&str, &str, f64)] = &[
    ("US", "USD", 40.0),
    ("GB", "GBP", 12.0),
    ("DE", "EUR", 10.0),
    ("FR", "EUR", 8.0),
    ("CA", "CAD", 8.0),
    ("ES", "EUR", 5.0),
    ("IT", "EUR", 5.0),
    ("NL", "EUR", 4.0),
    ("AU", "AUD", 5.0),
    ("SE", "SEK", 3.0),
];

/// Countries outside the home markets that cross-border shoppers buy from
/// (paying in USD or EUR with their local cards).
pub const CROSS_BORDER: &[&str] = &["CH", "NO", "MX", "JP", "BR", "AE", "SG", "IL", "KR", "IN"];

/// Where travellers from the home markets are when they shop.
pub const DESTINATIONS: &[&str] = &[
    "ES", "IT", "FR", "US", "GB", "MX", "TH", "JP", "PT", "GR", "DE", "TR", "AE", "CA",
];

/// Countries fraudsters operate from in the cited reports (and the
/// attacker's own IP when no proxy hides it).
pub const FRAUD_ORIGINS: &[&str] = &["NG", "RU", "VN", "ID", "UA", "RO", "BR", "PK", "BD", "PH"];

/// Units of the currency per US dollar (rounded; amounts only need the
/// order of magnitude), and its minor-unit exponent.
pub fn currency_scale(code: &str) -> (f64, u32) {
    match code {
        "EUR" => (0.92, 2),
        "GBP" => (0.79, 2),
        "CAD" => (1.36, 2),
        "AUD" => (1.52, 2),
        "SEK" => (10.5, 2),
        _ => (1.0, 2),
    }
}

pub fn home_currency(country: &str) -> &'static str {
    HOME_MARKETS
        .iter()
        .find(|(c, _, _)| *c == country)
        .map_or("USD", |(_, cur, _)| cur)
}

/// What kind of network an address belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetKind {
    Residential,
    Mobile,
    /// Hosting providers: VPN exits, bots, cloud servers.
    Hosting,
    /// iCloud Private Relay egress (Akamai, Cloudflare).
    Relay,
    /// Corporate secure web gateways (Zscaler).
    Corporate,
}

/// A network: its country (`""` for global hosting), autonomous system,
/// name and the /16 prefixes addresses are drawn from. The ASNs and prefixes
/// are those networks' public allocations (plausible, not exhaustive).
pub struct Network {
    pub country: &'static str,
    pub asn: u32,
    pub name: &'static str,
    pub kind: NetKind,
    pub prefixes: &'static [(u8, u8)],
}

const fn net(
    country: &'static str,
    asn: u32,
    name: &'static str,
    kind: NetKind,
    prefixes: &'static [(u8, u8)],
) -> Network {
    Network {
        country,
        asn,
        name,
        kind,
        prefixes,
    }
}

use NetKind::{Corporate, Hosting, Mobile, Relay, Residential};

pub static NETWORKS: &[Network] = &[
    net(
        "US",
        7922,
        "COMCAST-7922",
        Residential,
        &[(73, 12), (73, 140), (24, 6)],
    ),
    net(
        "US",
        7018,
        "ATT-INTERNET4",
        Residential,
        &[(99, 12), (99, 37), (107, 200)],
    ),
    net("US", 701, "UUNET", Residential, &[(71, 162), (71, 105)]),
    net(
        "US",
        20115,
        "CHARTER-20115",
        Residential,
        &[(47, 145), (24, 176)],
    ),
    net(
        "US",
        21928,
        "T-MOBILE-AS21928",
        Mobile,
        &[(172, 56), (172, 58)],
    ),
    net("US", 6167, "CELLCO-PART", Mobile, &[(174, 204), (174, 220)]),
    net("GB", 2856, "BT-UK-AS", Residential, &[(86, 140), (81, 151)]),
    net("GB", 5089, "NTL", Residential, &[(82, 12), (82, 31)]),
    net("GB", 12576, "EE", Mobile, &[(31, 94)]),
    net(
        "DE",
        3320,
        "DTAG",
        Residential,
        &[(79, 200), (91, 12), (91, 48)],
    ),
    net("DE", 3209, "VODANET", Residential, &[(88, 70)]),
    net("DE", 6805, "TDDE-ASN1", Mobile, &[(176, 0), (176, 3)]),
    net("FR", 3215, "Orange", Residential, &[(90, 12), (90, 90)]),
    net("FR", 12322, "PROXAD", Residential, &[(82, 65), (88, 170)]),
    net("FR", 51207, "FREEM", Mobile, &[(37, 171)]),
    net(
        "CA",
        812,
        "ROGERS-COMMUNICATIONS",
        Residential,
        &[(99, 230), (99, 241)],
    ),
    net("CA", 577, "BACOM", Residential, &[(70, 26), (70, 52)]),
    net("CA", 852, "ASN852", Mobile, &[(142, 176)]),
    net(
        "ES",
        3352,
        "TELEFONICA_DE_ESPANA",
        Residential,
        &[(83, 40), (83, 58)],
    ),
    net("ES", 12479, "UNI2-AS", Mobile, &[(81, 34)]),
    net("IT", 3269, "ASN-IBSNAZ", Residential, &[(79, 20), (79, 40)]),
    net("IT", 30722, "VODAFONE-IT-ASN", Mobile, &[(5, 90)]),
    net("NL", 1136, "KPN", Residential, &[(77, 163), (77, 170)]),
    net("NL", 33915, "TNF-AS", Residential, &[(84, 26)]),
    net(
        "AU",
        1221,
        "ASN-TELSTRA",
        Residential,
        &[(101, 160), (58, 104)],
    ),
    net("AU", 4804, "MPX-AS", Mobile, &[(49, 180)]),
    net(
        "SE",
        3301,
        "TELIANET-SWEDEN",
        Residential,
        &[(78, 67), (90, 224)],
    ),
    net("CH", 3303, "SWISSCOM", Residential, &[(85, 1), (178, 197)]),
    net("NO", 2119, "TELENOR-NEXTEL", Residential, &[(84, 208)]),
    net("MX", 8151, "UNINET", Residential, &[(189, 203), (187, 190)]),
    net("JP", 2516, "KDDI", Residential, &[(106, 128), (111, 86)]),
    net("BR", 28573, "CLARO", Residential, &[(177, 94), (179, 218)]),
    net("AE", 5384, "EMIRATES-INTERNET", Residential, &[(94, 200)]),
    net("SG", 9506, "SINGTEL-FIBRE", Residential, &[(116, 86)]),
    net("IL", 1680, "NV-ASN", Residential, &[(89, 138)]),
    net("KR", 4766, "KIXS-AS-KR", Residential, &[(121, 130)]),
    net(
        "IN",
        24560,
        "AIRTELBROADBAND-AS-AP",
        Residential,
        &[(122, 171)],
    ),
    net("TH", 7470, "TRUEINTERNET", Residential, &[(171, 96)]),
    net("PT", 3243, "MEO-RESIDENCIAL", Residential, &[(85, 240)]),
    net("GR", 6799, "OTENET-GR", Residential, &[(94, 66)]),
    net("TR", 9121, "TTNET", Residential, &[(78, 180)]),
    net("NG", 29465, "VCG-AS", Residential, &[(105, 112)]),
    net(
        "RU",
        12389,
        "ROSTELECOM-AS",
        Residential,
        &[(95, 24), (188, 16)],
    ),
    net("VN", 7552, "VIETEL-AS-AP", Residential, &[(27, 72)]),
    net("ID", 7713, "TELKOMNET-AS-AP", Residential, &[(36, 72)]),
    net("UA", 15895, "KSNET-AS", Residential, &[(46, 211)]),
    net("RO", 8708, "RCS-RDS", Residential, &[(86, 120)]),
    net("PK", 45595, "PKTELECOM-AS-PK", Residential, &[(39, 32)]),
    net("BD", 24432, "GP-BD", Residential, &[(103, 67)]),
    net("PH", 9299, "IPG-AS-AP", Residential, &[(112, 198)]),
    // Hosting: VPN exits, bots and cloud servers (country set per use).
    net("", 9009, "M247", Hosting, &[(37, 120), (185, 156)]),
    net("", 60068, "CDN77", Hosting, &[(185, 59)]),
    net(
        "",
        14061,
        "DIGITALOCEAN-ASN",
        Hosting,
        &[(159, 89), (165, 227)],
    ),
    net("", 16276, "OVH", Hosting, &[(51, 68), (51, 75)]),
    net("", 16509, "AMAZON-02", Hosting, &[(3, 80), (52, 14)]),
    net("", 24940, "HETZNER-AS", Hosting, &[(95, 216), (65, 108)]),
    net("", 36183, "AKAMAI-AS", Relay, &[(172, 224), (172, 226)]),
    net("", 13335, "CLOUDFLARENET", Relay, &[(104, 28)]),
    net("", 53813, "ZSCALER-INC", Corporate, &[(165, 225)]),
];

/// Where a device is connected from, as the device provider reports it.
#[derive(Debug, Clone)]
pub struct Net {
    pub ip: String,
    pub country: String,
    pub asn: u32,
    pub asn_name: &'static str,
    pub datacenter: bool,
}

fn address(rng: &mut Rng, network: &Network) -> String {
    let (a, b) = *rng.pick(network.prefixes);
    format!("{a}.{b}.{}.{}", rng.int(0, 255), rng.int(1, 254))
}

fn networks(country: &str, kind: NetKind) -> Vec<&'static Network> {
    NETWORKS
        .iter()
        .filter(|n| n.kind == kind && (n.country == country || n.country.is_empty()))
        .collect()
}

/// A fresh address on a network of `kind` in `country` (residential if the
/// country has none of that kind). Hosting, relay and corporate networks
/// are global: they report the `country` given (the exit's location).
pub fn connect(rng: &mut Rng, country: &str, kind: NetKind) -> Net {
    let mut choices = networks(country, kind);
    if choices.is_empty() {
        choices = networks(country, Residential);
    }
    if choices.is_empty() {
        choices = networks("US", Residential);
    }
    let network = *rng.pick(&choices);
    Net {
        ip: address(rng, network),
        country: country.to_owned(),
        asn: network.asn,
        asn_name: network.name,
        // Relay egress and Zscaler sit in hosting-style ranges; providers
        // flag some of them as datacenter addresses.
        datacenter: match kind {
            Hosting => true,
            Relay | Corporate => rng.chance(0.5),
            _ => false,
        },
    }
}

// ---------------------------------------------------------------------------
// Cards

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CardKind {
    Credit,
    Debit,
    Prepaid,
    Business,
}

#[derive(Debug, Clone)]
pub struct Card {
    pub bin: String,
    pub last4: String,
    pub country: String,
}

/// 6-digit BINs of the table, by issuing country and kind (Visa,
/// Mastercard and, for credit, American Express), in ascending order.
static POOLS: LazyLock<BTreeMap<(String, CardKind), Vec<u32>>> = LazyLock::new(|| {
    let mut pools: BTreeMap<(String, CardKind), Vec<u32>> = BTreeMap::new();
    let ranges = [
        (400_000u32, 499_999u32),
        (510_000, 559_999),
        (222_100, 272_099),
        (340_000, 349_999),
        (370_000, 379_999),
    ];
    for (lo, hi) in ranges {
        for value in lo..=hi {
            let Some(info) = bins::lookup(&format!("{value:06}")) else {
                continue;
            };
            if info.source != bins::BinSource::Table
                || !matches!(info.brand, "visa" | "mastercard" | "amex")
            {
                continue;
            }
            let Some(country) = info.country else {
                continue;
            };
            let business = info
                .category
                .is_some_and(|c| c.contains("business") || c.contains("corporate"));
            let kind = if info.prepaid {
                CardKind::Prepaid
            } else if business {
                CardKind::Business
            } else {
                match info.funding {
                    Some(bins::Funding::Credit) => CardKind::Credit,
                    Some(bins::Funding::Debit) => CardKind::Debit,
                    _ => continue,
                }
            };
            pools
                .entry((country.to_owned(), kind))
                .or_default()
                .push(value);
        }
    }
    pools
});

/// The usual mix of card kinds in a country's online payments.
fn kind_mix(country: &str) -> &'static [(CardKind, f64)] {
    match country {
        "US" | "CA" | "AU" | "JP" | "KR" => &[
            (CardKind::Credit, 62.0),
            (CardKind::Debit, 33.0),
            (CardKind::Prepaid, 3.0),
            (CardKind::Business, 2.0),
        ],
        _ => &[
            (CardKind::Debit, 55.0),
            (CardKind::Credit, 40.0),
            (CardKind::Prepaid, 3.0),
            (CardKind::Business, 2.0),
        ],
    }
}

/// A card issued in `country` of `kind` (a kind the table lacks there
/// falls back to any kind of the country, then to the US).
pub fn card_of(rng: &mut Rng, country: &str, kind: CardKind) -> Card {
    let pools = &*POOLS;
    let pool = pools
        .get(&(country.to_owned(), kind))
        .or_else(|| {
            [
                CardKind::Debit,
                CardKind::Credit,
                CardKind::Prepaid,
                CardKind::Business,
            ]
            .iter()
            .find_map(|k| pools.get(&(country.to_owned(), *k)))
        })
        .or_else(|| pools.get(&("US".to_owned(), kind)));
    let bin = match pool {
        Some(p) if !p.is_empty() => format!("{:06}", rng.pick(p)),
        _ => "411111".to_owned(),
    };
    let country = bins::lookup(&bin)
        .and_then(|i| i.country)
        .unwrap_or(country)
        .to_owned();
    Card {
        bin,
        last4: format!("{:04}", rng.int(0, 9999)),
        country,
    }
}

/// A card as a shopper of `country` holds one.
pub fn card(rng: &mut Rng, country: &str) -> Card {
    let kind = *rng.weighted(kind_mix(country));
    card_of(rng, country, kind)
}

// ---------------------------------------------------------------------------
// People and emails

const FIRST: &[&str] = &[
    "james",
    "mary",
    "robert",
    "patricia",
    "john",
    "jennifer",
    "michael",
    "linda",
    "david",
    "elizabeth",
    "sarah",
    "thomas",
    "emma",
    "oliver",
    "sophie",
    "lukas",
    "lena",
    "hugo",
    "chloe",
    "lucas",
    "mia",
    "noah",
    "olivia",
    "liam",
    "ava",
    "mateo",
    "lucia",
    "giulia",
    "marco",
    "sven",
    "anna",
    "priya",
    "wei",
    "yuki",
    "fatima",
    "omar",
    "daniel",
    "laura",
    "kevin",
    "nina",
];

const LAST: &[&str] = &[
    "smith",
    "johnson",
    "williams",
    "brown",
    "jones",
    "garcia",
    "miller",
    "davis",
    "martin",
    "taylor",
    "wilson",
    "moore",
    "muller",
    "schmidt",
    "schneider",
    "dubois",
    "bernard",
    "rossi",
    "ferrari",
    "lopez",
    "martinez",
    "fernandez",
    "jansen",
    "devries",
    "andersson",
    "nilsson",
    "tremblay",
    "roy",
    "nguyen",
    "kim",
    "patel",
    "singh",
    "khan",
    "cohen",
    "silva",
    "santos",
];

/// Free webmail first, then the country's own providers.
fn domains(country: &str) -> &'static [(&'static str, f64)] {
    match country {
        "US" => &[
            ("gmail.com", 45.0),
            ("yahoo.com", 12.0),
            ("outlook.com", 7.0),
            ("hotmail.com", 6.0),
            ("icloud.com", 10.0),
            ("aol.com", 3.0),
            ("comcast.net", 4.0),
        ],
        "GB" => &[
            ("gmail.com", 38.0),
            ("hotmail.co.uk", 14.0),
            ("outlook.com", 10.0),
            ("yahoo.co.uk", 8.0),
            ("btinternet.com", 7.0),
            ("icloud.com", 9.0),
        ],
        "DE" => &[
            ("gmail.com", 30.0),
            ("gmx.de", 22.0),
            ("web.de", 20.0),
            ("t-online.de", 10.0),
            ("outlook.de", 6.0),
        ],
        "FR" => &[
            ("gmail.com", 40.0),
            ("orange.fr", 15.0),
            ("free.fr", 10.0),
            ("hotmail.fr", 12.0),
            ("laposte.net", 6.0),
        ],
        "CA" => &[
            ("gmail.com", 45.0),
            ("hotmail.com", 15.0),
            ("outlook.com", 8.0),
            ("yahoo.ca", 8.0),
            ("rogers.com", 5.0),
            ("icloud.com", 8.0),
        ],
        _ => &[
            ("gmail.com", 50.0),
            ("outlook.com", 12.0),
            ("hotmail.com", 12.0),
            ("yahoo.com", 8.0),
            ("icloud.com", 8.0),
        ],
    }
}

/// Employers' own domains (fictional companies).
const COMPANY_DOMAINS: &[&str] = &[
    "contoso.com",
    "fabrikam.com",
    "northwindtraders.com",
    "adventure-works.com",
    "tailspintoys.com",
    "wingtiptoys.com",
    "litwareinc.com",
];

/// Throwaway-inbox services.
pub const DISPOSABLE_DOMAINS: &[&str] = &[
    "mailinator.com",
    "guerrillamail.com",
    "yopmail.com",
    "10minutemail.com",
    "temp-mail.org",
    "sharklasers.com",
    "trashmail.com",
];

#[derive(Debug, Clone)]
pub struct Person {
    pub first: &'static str,
    pub last: &'static str,
}

pub fn person(rng: &mut Rng) -> Person {
    Person {
        first: rng.pick::<&str>(FIRST),
        last: rng.pick::<&str>(LAST),
    }
}

/// An address as people choose theirs: a name with a separator or digits,
/// at webmail, the country's provider, or (sometimes) their employer.
pub fn email(rng: &mut Rng, p: &Person, country: &str, company_share: f64) -> String {
    let local = match rng.int(0, 4) {
        0 => format!("{}.{}", p.first, p.last),
        1 => format!("{}{}", p.first, p.last),
        2 => format!("{}{}{}", &p.first[..1], p.last, rng.int(1, 99)),
        3 => format!("{}.{}{}", p.first, p.last, rng.int(1960, 2005)),
        _ => format!("{}_{}", p.first, p.last),
    };
    let domain = if rng.chance(company_share) {
        rng.pick(COMPANY_DOMAINS)
    } else {
        rng.weighted(domains(country))
    };
    format!("{local}@{domain}")
}

/// An address no person chose: random letters and digits.
pub fn random_email(rng: &mut Rng, disposable: bool) -> String {
    let n = rng.int(6, 12) as usize;
    let local = rng.lower(n);
    let domain = if disposable {
        rng.pick(DISPOSABLE_DOMAINS)
    } else {
        rng.pick(&["gmail.com", "outlook.com", "yahoo.com", "hotmail.com"])
    };
    format!("{local}@{domain}")
}

/// An amount a shopper pays: log-normal around `median_usd` (in US dollars,
/// converted), priced the way shops price (often …99).
pub fn price(rng: &mut Rng, currency: &str, median_usd: f64, sigma: f64) -> f64 {
    let (scale, _) = currency_scale(currency);
    let raw = rng.log_normal(median_usd, sigma).clamp(1.0, 20_000.0) * scale;
    let whole = raw.floor().max(1.0);
    if rng.chance(0.5) {
        whole + 0.99
    } else {
        (raw * 100.0).round() / 100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_come_from_the_bin_table_with_their_country() {
        let mut rng = Rng::new(1);
        for country in [
            "US", "GB", "DE", "FR", "CA", "ES", "IT", "NL", "AU", "SE", "CH", "JP",
        ] {
            for kind in [CardKind::Credit, CardKind::Debit, CardKind::Prepaid] {
                let c = card_of(&mut rng, country, kind);
                let info = bins::lookup(&c.bin).unwrap();
                assert_eq!(info.source, bins::BinSource::Table, "{country} {kind:?}");
                assert_eq!(info.country, Some(c.country.as_str()));
            }
            let c = card_of(&mut rng, country, CardKind::Debit);
            assert_eq!(c.country, country, "{country} has debit BINs");
        }
        let prepaid = card_of(&mut rng, "US", CardKind::Prepaid);
        assert!(bins::lookup(&prepaid.bin).unwrap().prepaid);
    }

    #[test]
    fn every_network_prefix_makes_an_address() {
        let mut rng = Rng::new(2);
        for n in NETWORKS {
            let ip = address(&mut rng, n);
            assert!(ip.parse::<std::net::Ipv4Addr>().is_ok(), "{ip}");
        }
        let mobile = connect(&mut rng, "US", NetKind::Mobile);
        assert!(!mobile.datacenter);
        assert!(connect(&mut rng, "NL", NetKind::Hosting).datacenter);
    }
}
