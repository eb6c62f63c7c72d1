//! The seeded population: honest shoppers with the variety real ones have,
//! and the attacks the literature describes, as a list of planned
//! transactions in the order they are sent. Pure: the same seed and size give
//! the same plan. What each scenario models and why:
//! `docs/simulated-traffic.md`.
//!
//! Time: every event has a place `at` in [0, 1) on a nominal day. The device
//! provider's own velocity (events, distinct IPs and countries per device
//! over 5 minutes, 1 hour, 24 hours) is computed on that day; riskgate's
//! counters see the traffic as it is sent (`--duration` spreads it out).

use serde::Serialize;

use super::rng::Rng;
use super::world::{
    self, card, card_of, connect, email, home_currency, person, price, random_email, Card,
    CardKind, Net, NetKind, Person,
};
use crate::simulator::Persona;

/// One scenario of the table: its name, whether it is an attack, and what
/// it models (one line).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Scenario {
    pub name: &'static str,
    pub fraud: bool,
    pub summary: &'static str,
}

const fn good(name: &'static str, summary: &'static str) -> Scenario {
    Scenario {
        name,
        fraud: false,
        summary,
    }
}

const fn attack(name: &'static str, summary: &'static str) -> Scenario {
    Scenario {
        name,
        fraud: true,
        summary,
    }
}

pub const RETURNING: Scenario = good(
    "returning",
    "loyal customer, 2-3 orders, known device and card",
);
pub const NEW: Scenario = good("new_customer", "first order, new account and device");
pub const TRAVELLER: Scenario = good(
    "traveller",
    "orders from abroad: IP country is not the card's",
);
pub const PRIVACY: Scenario = good(
    "privacy",
    "VPN, iCloud Private Relay, corporate proxy, privacy browser, incognito",
);
pub const MOBILE_NAT: Scenario = good(
    "mobile_nat",
    "phone on a carrier NAT: many shoppers share an IP",
);
pub const SHARED_DEVICE: Scenario =
    good("shared_device", "family device: several accounts and cards");
pub const MULTI_CARD: Scenario = good(
    "multi_card",
    "several cards per user, a retry with another card",
);
pub const GIFT: Scenario = good("gift", "gift shipped to another country");
pub const BIG_FIRST: Scenario = good("big_first_order", "new customer, large first purchase");
pub const PREPAID: Scenario = good("prepaid_debit", "prepaid or debit card");
pub const CROSS_BORDER: Scenario = good(
    "cross_border",
    "shopper abroad buying in USD/EUR with a local card",
);
pub const CARD_TESTING: Scenario = attack(
    "card_testing",
    "bursts of small amounts, many cards from one tool",
);
pub const BIN_ATTACK: Scenario = attack(
    "bin_attack",
    "enumeration: one BIN, generated numbers, tiny amounts",
);
pub const ATO: Scenario = attack(
    "account_takeover",
    "existing customer's account from a new device and place",
);
pub const STOLEN_CARD: Scenario = attack(
    "stolen_card",
    "new account, high amount, IP far from the card, reshipper",
);
pub const BOT_CHECKOUT: Scenario = attack(
    "checkout_bot",
    "automated checkouts of a limited item, many accounts",
);
pub const MULTI_ACCOUNT: Scenario = attack(
    "multi_accounting",
    "promo abuse: one person, one device, many new accounts",
);

/// Every scenario, in table order.
pub const SCENARIOS: &[Scenario] = &[
    RETURNING,
    NEW,
    TRAVELLER,
    PRIVACY,
    MOBILE_NAT,
    SHARED_DEVICE,
    MULTI_CARD,
    GIFT,
    BIG_FIRST,
    PREPAID,
    CROSS_BORDER,
    CARD_TESTING,
    BIN_ATTACK,
    ATO,
    STOLEN_CARD,
    BOT_CHECKOUT,
    MULTI_ACCOUNT,
];

/// The transaction as the merchant sends it to `/risk/bin/score`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Payload {
    pub transaction_amount: f64,
    pub currency: String,
    pub bin: String,
    pub last4: String,
    pub email: String,
    pub ip_address: String,
    pub billing_country: String,
    pub shipping_country: String,
    pub external_transaction_number: String,
}

/// One planned transaction.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Planned {
    pub seq: usize,
    /// Place on the nominal day, in [0, 1).
    pub at: f64,
    pub scenario: &'static str,
    pub fraud: bool,
    /// The device event's id: the persona the simulator answers with.
    pub request_id: String,
    pub session_id: String,
    pub user_id: String,
    pub persona: Persona,
    pub payload: Payload,
}

/// Share of the nominal day in one second.
const SECOND: f64 = 1.0 / 86_400.0;

/// A device: its id and what stays true of it between visits.
#[derive(Debug, Clone)]
struct Device {
    visitor: String,
    confidence: f64,
    rooted: bool,
    jailbroken: bool,
    virtual_machine: bool,
    emulator: bool,
    tampering: bool,
    bot: Option<&'static str>,
}

impl Device {
    /// A real person's phone or computer.
    fn honest(rng: &mut Rng, mobile: bool) -> Self {
        Self {
            visitor: rng.alnum(20),
            confidence: rng.between(0.9, 1.0),
            // Enthusiasts root or jailbreak their own phones.
            rooted: mobile && rng.chance(0.02),
            jailbroken: mobile && rng.chance(0.01),
            // Remote desktops and VDI at work.
            virtual_machine: !mobile && rng.chance(0.01),
            emulator: false,
            // Privacy extensions sometimes read as tampering.
            tampering: rng.chance(0.01),
            // Agentic shopping assistants, declared as good bots.
            bot: rng.chance(0.005).then_some("good"),
        }
    }
}

/// What one visit looks like from the device provider and the merchant.
struct Visit<'a> {
    at: f64,
    scenario: Scenario,
    user_id: &'a str,
    session_id: String,
    device: &'a Device,
    net: Net,
    vpn: bool,
    proxy: bool,
    tor: bool,
    incognito: bool,
    blocklisted: bool,
    /// Identification calls the merchant made during the visit (pages).
    pages: u32,
    card: &'a Card,
    amount: f64,
    currency: &'a str,
    email: &'a str,
    billing: &'a str,
    shipping: &'a str,
}

/// A planned transaction before the provider velocity is known.
struct Draft {
    planned: Planned,
    pages: u32,
}

struct Shopper {
    user_id: String,
    person: Person,
    email: String,
    country: &'static str,
    currency: &'static str,
    device: Device,
    home: Net,
    cards: Vec<Card>,
}

struct Plan {
    seed: u64,
    scale: f64,
    drafts: Vec<Draft>,
    orders: u64,
}

impl Plan {
    fn scaled(&self, base: f64, min: u32) -> u32 {
        ((base * self.scale).round() as u32).max(min)
    }

    fn add(&mut self, v: Visit<'_>) {
        let persona = Persona {
            visitor_id: Some(v.device.visitor.clone()),
            ip: Some(v.net.ip.clone()),
            country: Some(v.net.country.clone()),
            asn: Some(v.net.asn),
            asn_name: Some(v.net.asn_name.to_owned()),
            datacenter: v.net.datacenter,
            bot: v.device.bot.map(str::to_owned),
            vpn: v.vpn,
            proxy: v.proxy,
            tor: v.tor,
            incognito: v.incognito,
            tampering: v.device.tampering,
            emulator: v.device.emulator,
            virtual_machine: v.device.virtual_machine,
            rooted: v.device.rooted,
            jailbroken: v.device.jailbroken,
            blocklisted: v.blocklisted,
            // Two decimals: what the request id can carry.
            confidence: Some(
                ((v.device.confidence - if v.incognito { 0.04 } else { 0.0 }).clamp(0.0, 1.0)
                    * 100.0)
                    .round()
                    / 100.0,
            ),
            ..Default::default()
        };
        self.orders += 1;
        let payload = Payload {
            transaction_amount: v.amount,
            currency: v.currency.to_owned(),
            bin: v.card.bin.clone(),
            last4: v.card.last4.clone(),
            email: v.email.to_owned(),
            ip_address: v.net.ip.clone(),
            billing_country: v.billing.to_owned(),
            shipping_country: v.shipping.to_owned(),
            external_transaction_number: format!("ord-{}-{:05}", self.seed, self.orders),
        };
        self.drafts.push(Draft {
            planned: Planned {
                seq: 0,
                at: v.at.clamp(0.0, 0.999_999),
                scenario: v.scenario.name,
                fraud: v.scenario.fraud,
                request_id: String::new(),
                session_id: v.session_id,
                user_id: v.user_id.to_owned(),
                persona,
                payload,
            },
            pages: v.pages,
        });
    }
}

fn user_id(rng: &mut Rng) -> String {
    format!("u{}", rng.alnum(10))
}

fn session(rng: &mut Rng) -> String {
    format!("s{}", rng.alnum(12))
}

fn home_country(rng: &mut Rng) -> &'static str {
    let markets: Vec<(&'static str, f64)> = world::HOME_MARKETS
        .iter()
        .map(|(c, _, w)| (*c, *w))
        .collect();
    rng.weighted::<&str>(&markets)
}

fn shopper(rng: &mut Rng, country: &'static str, mobile: bool) -> Shopper {
    let person = person(rng);
    let email = email(rng, &person, country, 0.08);
    let mobile_device = mobile || rng.chance(0.55);
    let kind = if mobile {
        NetKind::Mobile
    } else {
        NetKind::Residential
    };
    Shopper {
        user_id: user_id(rng),
        email,
        country,
        currency: home_currency(country),
        device: Device::honest(rng, mobile_device),
        home: connect(rng, country, kind),
        cards: vec![card(rng, country)],
        person,
    }
}

/// Sorted places on the day for `n` orders of one shopper.
fn times(rng: &mut Rng, n: u32) -> Vec<f64> {
    let mut t: Vec<f64> = (0..n).map(|_| rng.unit()).collect();
    t.sort_by(f64::total_cmp);
    t
}

/// The everyday signals of an honest visit: sometimes incognito, now and
/// then a consumer VPN.
fn everyday_net(rng: &mut Rng, s: &Shopper) -> (Net, bool) {
    if rng.chance(0.04) {
        (connect(rng, s.country, NetKind::Hosting), true)
    } else {
        (s.home.clone(), false)
    }
}

/// Plans the whole population: `shoppers` honest shoppers and attacks in
/// proportion (the defaults are sized for 300).
pub fn plan(seed: u64, shoppers: u32) -> Vec<Planned> {
    let shoppers = shoppers.max(1);
    let mut plan = Plan {
        seed,
        scale: f64::from(shoppers) / 300.0,
        drafts: Vec::new(),
        orders: 0,
    };
    let share = |p: f64| (f64::from(shoppers) * p).round() as u32;
    let counts = [
        (TRAVELLER, share(0.07)),
        (PRIVACY, share(0.12)),
        (MOBILE_NAT, share(0.10)),
        (SHARED_DEVICE, share(0.06)),
        (MULTI_CARD, share(0.05)),
        (GIFT, share(0.06)),
        (BIG_FIRST, share(0.04)),
        (PREPAID, share(0.05)),
        (CROSS_BORDER, share(0.05)),
        (NEW, share(0.18)),
    ];
    let taken: u32 = counts.iter().map(|(_, n)| n).sum();
    let returning = shoppers.saturating_sub(taken).max(1);

    let victims = returning_customers(&mut plan, returning);
    new_customers(&mut plan, counts[9].1);
    travellers(&mut plan, counts[0].1);
    privacy(&mut plan, counts[1].1);
    mobile_nat(&mut plan, counts[2].1);
    shared_devices(&mut plan, counts[3].1);
    multi_card(&mut plan, counts[4].1);
    gifts(&mut plan, counts[5].1);
    big_first(&mut plan, counts[6].1);
    prepaid(&mut plan, counts[7].1);
    cross_border(&mut plan, counts[8].1);

    card_testing(&mut plan);
    bin_attack(&mut plan);
    account_takeover(&mut plan, &victims);
    stolen_cards(&mut plan);
    checkout_bots(&mut plan);
    multi_accounting(&mut plan);

    finish(plan)
}

/// Orders, provider velocity and request ids.
fn finish(plan: Plan) -> Vec<Planned> {
    let seed = plan.seed;
    let mut drafts = plan.drafts;
    // Stable: events at the same place keep the order they were planned in.
    drafts.sort_by(|a, b| a.planned.at.total_cmp(&b.planned.at));
    let windows = [300.0 * SECOND, 3_600.0 * SECOND, 1.0];
    let mut out: Vec<Planned> = Vec::with_capacity(drafts.len());
    // Each device's events so far, in order.
    let mut seen: std::collections::HashMap<Option<String>, Vec<usize>> =
        std::collections::HashMap::new();
    for (seq, draft) in drafts.iter().enumerate() {
        let mut p = draft.planned.clone();
        let at = p.at;
        let me = draft.planned.persona.clone();
        let history = seen.entry(me.visitor_id.clone()).or_default();
        let earlier: Vec<(&Draft, f64)> = history
            .iter()
            .map(|&i| (&drafts[i], at - drafts[i].planned.at))
            .collect();
        history.push(seq);
        let count = |w: f64| {
            draft.pages
                + earlier
                    .iter()
                    .filter(|(_, age)| *age <= w)
                    .map(|(d, _)| d.pages)
                    .sum::<u32>()
        };
        let distinct = |w: f64, f: &dyn Fn(&Persona) -> Option<String>| {
            let mut seen: Vec<Option<String>> = vec![f(&me)];
            for (d, age) in &earlier {
                let v = f(&d.planned.persona);
                if *age <= w && !seen.contains(&v) {
                    seen.push(v);
                }
            }
            seen.len() as u32
        };
        let ip = |q: &Persona| q.ip.clone();
        let country = |q: &Persona| q.country.clone();
        p.persona.events = Some([count(windows[0]), count(windows[1]), count(windows[2])]);
        p.persona.distinct_ip = Some([distinct(windows[1], &ip), distinct(windows[2], &ip)]);
        p.persona.distinct_country = Some([
            distinct(windows[1], &country),
            distinct(windows[2], &country),
        ]);
        p.seq = seq;
        p.request_id = p.persona.encode(&format!("r{seed}x{seq}"));
        out.push(p);
    }
    out
}

// ---------------------------------------------------------------------------
// Honest shoppers

/// Loyal customers: two or three orders over the day from the device and
/// card they always use; now and then from their other device, or with a
/// new card. Returns (user id, email, card, first order's place) for the
/// account-takeover scenario's victims.
fn returning_customers(plan: &mut Plan, n: u32) -> Vec<(String, String, Card, f64, &'static str)> {
    let mut rng = Rng::stream(plan.seed, "returning");
    let mut victims = Vec::new();
    for _ in 0..n {
        let country = home_country(&mut rng);
        let mut s = shopper(&mut rng, country, false);
        let second_device = Device::honest(&mut rng, true);
        if rng.chance(0.1) {
            let extra = card(&mut rng, country);
            s.cards.push(extra);
        }
        let orders = rng.int(2, 3);
        let at = times(&mut rng, orders);
        for t in &at {
            let device = if rng.chance(0.15) {
                &second_device
            } else {
                &s.device
            };
            let (net, vpn) = everyday_net(&mut rng, &s);
            let card = rng.pick(&s.cards).clone();
            let amount = price(&mut rng, s.currency, 55.0, 0.8);
            let incognito = rng.chance(0.08);
            let pages = rng.int(1, 4);
            plan.add(Visit {
                at: *t,
                scenario: RETURNING,
                user_id: &s.user_id,
                session_id: session(&mut rng),
                device,
                net,
                vpn,
                proxy: false,
                tor: false,
                incognito,
                blocklisted: false,
                pages,
                card: &card,
                amount,
                currency: s.currency,
                email: &s.email,
                billing: s.country,
                shipping: s.country,
            });
        }
        victims.push((
            s.user_id.clone(),
            s.email.clone(),
            s.cards[0].clone(),
            at[0],
            s.country,
        ));
    }
    victims
}

fn one_order(
    plan: &mut Plan,
    rng: &mut Rng,
    scenario: Scenario,
    s: &Shopper,
    at: f64,
    amount: f64,
    shipping: &str,
) {
    let (net, vpn) = everyday_net(rng, s);
    let incognito = rng.chance(0.12);
    let pages = rng.int(1, 5);
    let session_id = session(rng);
    plan.add(Visit {
        at,
        scenario,
        user_id: &s.user_id,
        session_id,
        device: &s.device,
        net,
        vpn,
        proxy: false,
        tor: false,
        incognito,
        blocklisted: false,
        pages,
        card: &s.cards[0],
        amount,
        currency: s.currency,
        email: &s.email,
        billing: s.country,
        shipping,
    });
}

/// First orders: a new account on a device the merchant has never seen.
fn new_customers(plan: &mut Plan, n: u32) {
    let mut rng = Rng::stream(plan.seed, "new");
    for _ in 0..n {
        let country = home_country(&mut rng);
        let mut s = shopper(&mut rng, country, false);
        s.device.confidence = rng.between(0.85, 1.0);
        let amount = price(&mut rng, s.currency, 50.0, 0.85);
        let at = rng.unit();
        one_order(plan, &mut rng, NEW, &s, at, amount, country);
    }
}

/// Travellers: the card and billing address at home, the IP where they are
/// (hotel or café Wi-Fi, or a local SIM); some on a VPN for public Wi-Fi,
/// some on a new device. Roaming phones keep their home country (home-routed
/// roaming), so those are not in this scenario.
fn travellers(plan: &mut Plan, n: u32) {
    let mut rng = Rng::stream(plan.seed, "traveller");
    for _ in 0..n {
        let country = home_country(&mut rng);
        let mut s = shopper(&mut rng, country, true);
        let mut away = *rng.pick(world::DESTINATIONS);
        if away == country {
            away = "PT";
        }
        let orders = rng.int(1, 2);
        for (i, t) in times(&mut rng, orders).into_iter().enumerate() {
            // The second order, if any, is made back home.
            let abroad = i == 0;
            let vpn = abroad && rng.chance(0.15);
            let net = if !abroad {
                s.home.clone()
            } else if vpn {
                {
                    let exit = *rng.pick(&[country, away]);
                    connect(&mut rng, exit, NetKind::Hosting)
                }
            } else {
                let kind = if rng.chance(0.6) {
                    NetKind::Residential
                } else {
                    NetKind::Mobile
                };
                connect(&mut rng, away, kind)
            };
            if abroad && rng.chance(0.25) {
                s.device = Device::honest(&mut rng, false);
            }
            let amount = price(&mut rng, s.currency, 70.0, 0.9);
            let shipping = if abroad && rng.chance(0.2) {
                away
            } else {
                country
            };
            let incognito = rng.chance(0.1);
            let pages = rng.int(1, 4);
            plan.add(Visit {
                at: t,
                scenario: TRAVELLER,
                user_id: &s.user_id,
                session_id: session(&mut rng),
                device: &s.device,
                net,
                vpn,
                proxy: false,
                tor: false,
                incognito,
                blocklisted: false,
                pages,
                card: &s.cards[0],
                amount,
                currency: s.currency,
                email: &s.email,
                billing: country,
                shipping,
            });
        }
    }
}

/// Privacy-minded shoppers: a consumer VPN (often a local exit, sometimes
/// abroad), iCloud Private Relay (regional exit on Akamai/Cloudflare), a
/// corporate secure web gateway at work, or a privacy browser (Brave,
/// Firefox strict mode, Tor Browser) that blurs the fingerprint.
fn privacy(plan: &mut Plan, n: u32) {
    let mut rng = Rng::stream(plan.seed, "privacy");
    #[derive(Clone, Copy)]
    enum Kind {
        Vpn,
        Relay,
        Corporate,
        Browser,
    }
    let kinds = [
        (Kind::Vpn, 40.0),
        (Kind::Relay, 30.0),
        (Kind::Corporate, 15.0),
        (Kind::Browser, 15.0),
    ];
    for _ in 0..n {
        let country = home_country(&mut rng);
        let kind = *rng.weighted(&kinds);
        let mut s = shopper(&mut rng, country, matches!(kind, Kind::Relay));
        if matches!(kind, Kind::Corporate) {
            s.email = email(&mut rng, &s.person, country, 0.7);
        }
        if matches!(kind, Kind::Browser) {
            s.device.confidence = rng.between(0.35, 0.85);
            s.device.tampering = rng.chance(0.12);
        }
        let orders = rng.int(1, 2);
        for t in times(&mut rng, orders) {
            let (net, vpn, proxy, tor) = match kind {
                Kind::Vpn => {
                    let exit = if rng.chance(0.7) {
                        country
                    } else {
                        *rng.pick(&["US", "NL", "DE", "GB", "CH", "SE"])
                    };
                    (
                        connect(&mut rng, exit, NetKind::Hosting),
                        true,
                        false,
                        false,
                    )
                }
                Kind::Relay => (
                    connect(&mut rng, country, NetKind::Relay),
                    true,
                    false,
                    false,
                ),
                Kind::Corporate => {
                    let exit = if rng.chance(0.75) {
                        country
                    } else {
                        *rng.pick(&["US", "GB", "DE", "NL", "FR"])
                    };
                    (
                        connect(&mut rng, exit, NetKind::Corporate),
                        false,
                        true,
                        false,
                    )
                }
                Kind::Browser if rng.chance(0.15) => {
                    let exit = *rng.pick(&["DE", "NL", "US", "FR", "SE", "CH"]);
                    (
                        connect(&mut rng, exit, NetKind::Hosting),
                        false,
                        false,
                        true,
                    )
                }
                Kind::Browser => (s.home.clone(), false, false, false),
            };
            let incognito = rng.chance(0.45);
            let amount = price(&mut rng, s.currency, 60.0, 0.85);
            let pages = rng.int(1, 4);
            plan.add(Visit {
                at: t,
                scenario: PRIVACY,
                user_id: &s.user_id,
                session_id: session(&mut rng),
                device: &s.device,
                net,
                vpn,
                proxy,
                tor,
                incognito,
                blocklisted: false,
                pages,
                card: &s.cards[0],
                amount,
                currency: s.currency,
                email: &s.email,
                billing: country,
                shipping: country,
            });
        }
    }
}

/// Phones on mobile data: carriers put thousands of subscribers behind a
/// few carrier-grade NAT addresses, so one IP carries many users and cards.
fn mobile_nat(plan: &mut Plan, n: u32) {
    let mut rng = Rng::stream(plan.seed, "mobile_nat");
    // A few shared egress addresses per country.
    let mut egress: Vec<Net> = Vec::new();
    for (country, _, _) in world::HOME_MARKETS {
        for _ in 0..3 {
            egress.push(connect(&mut rng, country, NetKind::Mobile));
        }
    }
    for _ in 0..n {
        let country = home_country(&mut rng);
        let s = shopper(&mut rng, country, true);
        let local: Vec<&Net> = egress.iter().filter(|e| e.country == country).collect();
        let orders = rng.int(1, 2);
        for t in times(&mut rng, orders) {
            let net = (*rng.pick(&local)).clone();
            let amount = price(&mut rng, s.currency, 45.0, 0.8);
            let incognito = rng.chance(0.06);
            let pages = rng.int(1, 4);
            plan.add(Visit {
                at: t,
                scenario: MOBILE_NAT,
                user_id: &s.user_id,
                session_id: session(&mut rng),
                device: &s.device,
                net,
                vpn: false,
                proxy: false,
                tor: false,
                incognito,
                blocklisted: false,
                pages,
                card: &s.cards[0],
                amount,
                currency: s.currency,
                email: &s.email,
                billing: country,
                shipping: country,
            });
        }
    }
}

/// Households: two or three family members, each with their own account,
/// email and card, shopping on the family's tablet or computer at home.
fn shared_devices(plan: &mut Plan, n: u32) {
    let mut rng = Rng::stream(plan.seed, "shared_device");
    let mut left = n;
    while left > 0 {
        let country = home_country(&mut rng);
        let members = rng.int(2, 3).min(left);
        left -= members;
        let first = shopper(&mut rng, country, false);
        let (device, home) = (first.device.clone(), first.home.clone());
        let last = first.person.last;
        for m in 0..members {
            let mut s = if m == 0 {
                first.clone_shallow()
            } else {
                shopper(&mut rng, country, false)
            };
            s.person.last = last;
            s.email = email(&mut rng, &s.person, country, 0.05);
            s.device = device.clone();
            s.home = home.clone();
            let orders = rng.int(1, 2);
            for t in times(&mut rng, orders) {
                let amount = price(&mut rng, s.currency, 50.0, 0.8);
                one_order(plan, &mut rng, SHARED_DEVICE, &s, t, amount, country);
            }
        }
    }
}

impl Shopper {
    fn clone_shallow(&self) -> Self {
        Self {
            user_id: self.user_id.clone(),
            person: self.person.clone(),
            email: self.email.clone(),
            country: self.country,
            currency: self.currency,
            device: self.device.clone(),
            home: self.home.clone(),
            cards: self.cards.clone(),
        }
    }
}

/// Several cards per person: personal credit, debit, a business card; some
/// orders are a retry with another card a minute after the first.
fn multi_card(plan: &mut Plan, n: u32) {
    let mut rng = Rng::stream(plan.seed, "multi_card");
    for _ in 0..n {
        let country = home_country(&mut rng);
        let mut s = shopper(&mut rng, country, false);
        s.cards.push(card_of(&mut rng, country, CardKind::Debit));
        if rng.chance(0.5) {
            s.cards.push(card_of(&mut rng, country, CardKind::Business));
        }
        let retry = rng.chance(0.4);
        let first = rng.between(0.0, 0.9);
        let mut at = vec![first];
        if retry {
            at.push(first + rng.between(40.0, 180.0) * SECOND);
        } else {
            at.push(rng.between(first, 1.0));
        }
        let amount = price(&mut rng, s.currency, 60.0, 0.8);
        let session_id = session(&mut rng);
        for (i, t) in at.into_iter().enumerate() {
            let card = s.cards[i % s.cards.len()].clone();
            let amount = if retry {
                amount
            } else {
                price(&mut rng, s.currency, 60.0, 0.8)
            };
            let pages = rng.int(1, 3);
            plan.add(Visit {
                at: t,
                scenario: MULTI_CARD,
                user_id: &s.user_id,
                session_id: if retry {
                    session_id.clone()
                } else {
                    session(&mut rng)
                },
                device: &s.device,
                net: s.home.clone(),
                vpn: false,
                proxy: false,
                tor: false,
                incognito: false,
                blocklisted: false,
                pages,
                card: &card,
                amount,
                currency: s.currency,
                email: &s.email,
                billing: country,
                shipping: country,
            });
        }
    }
}

/// Gifts: shipped to family or friends in another country (the billing
/// address stays the buyer's).
fn gifts(plan: &mut Plan, n: u32) {
    let mut rng = Rng::stream(plan.seed, "gift");
    for _ in 0..n {
        let country = home_country(&mut rng);
        let s = shopper(&mut rng, country, false);
        let mut to = *rng.pick(&[
            "US", "GB", "DE", "FR", "CA", "ES", "IT", "AU", "IE", "PL", "IN", "MX",
        ]);
        if to == country {
            to = "IE";
        }
        let amount = price(&mut rng, s.currency, 75.0, 0.7);
        let at = rng.unit();
        one_order(plan, &mut rng, GIFT, &s, at, amount, to);
        if rng.chance(0.2) {
            let amount = price(&mut rng, s.currency, 50.0, 0.7);
            let later = rng.between(at, 1.0);
            one_order(plan, &mut rng, GIFT, &s, later, amount, country);
        }
    }
}

/// A first order that is large: a laptop, a sofa, a season's equipment.
fn big_first(plan: &mut Plan, n: u32) {
    let mut rng = Rng::stream(plan.seed, "big_first");
    for _ in 0..n {
        let country = home_country(&mut rng);
        let mut s = shopper(&mut rng, country, false);
        if rng.chance(0.6) {
            s.cards[0] = card_of(&mut rng, country, CardKind::Credit);
        }
        let amount = price(&mut rng, s.currency, 850.0, 0.5);
        let at = rng.unit();
        one_order(plan, &mut rng, BIG_FIRST, &s, at, amount, country);
    }
}

/// Prepaid and debit cards: the unbanked and underbanked, teenagers, gift
/// cards, people who keep a separate card for online shopping.
fn prepaid(plan: &mut Plan, n: u32) {
    let mut rng = Rng::stream(plan.seed, "prepaid");
    for _ in 0..n {
        let country = home_country(&mut rng);
        let mobile = rng.chance(0.5);
        let mut s = shopper(&mut rng, country, mobile);
        let kind = if rng.chance(0.6) {
            CardKind::Prepaid
        } else {
            CardKind::Debit
        };
        s.cards[0] = card_of(&mut rng, country, kind);
        let orders = rng.int(1, 2);
        for t in times(&mut rng, orders) {
            let amount = price(&mut rng, s.currency, 35.0, 0.7);
            one_order(plan, &mut rng, PREPAID, &s, t, amount, country);
        }
    }
}

/// Shoppers from outside the home markets, paying in USD or EUR with a
/// card from home, shipping home.
fn cross_border(plan: &mut Plan, n: u32) {
    let mut rng = Rng::stream(plan.seed, "cross_border");
    for _ in 0..n {
        let country = *rng.pick(world::CROSS_BORDER);
        let mut s = shopper(&mut rng, country, false);
        s.currency = if rng.chance(0.6) { "USD" } else { "EUR" };
        let amount = price(&mut rng, s.currency, 90.0, 0.8);
        let at = rng.unit();
        one_order(plan, &mut rng, CROSS_BORDER, &s, at, amount, country);
    }
}

// ---------------------------------------------------------------------------
// Attacks

/// Card testing: a list of stolen card numbers run through checkout at
/// machine speed with small amounts, to learn which cards are live. Either
/// one headless browser on a server, or an anti-detect browser behind
/// rotating residential proxies (new device id and IP every few tries).
fn card_testing(plan: &mut Plan) {
    let mut rng = Rng::stream(plan.seed, "card_testing");
    let bursts = plan.scaled(2.0, 1);
    for _ in 0..bursts {
        let size = plan.scaled(f64::from(rng.int(20, 30)), 4);
        let rotating = rng.chance(0.5);
        let start = rng.between(0.05, 0.9);
        let gap = rng.between(2.0, 8.0) * SECOND;
        let mut device = attacker_device(&mut rng, !rotating);
        let server = connect(&mut rng, "US", NetKind::Hosting);
        let mut net = server.clone();
        let one_account = rng.chance(0.5);
        let mut account = user_id(&mut rng);
        let disposable = rng.chance(0.4);
        let mut mail = random_email(&mut rng, disposable);
        let session_id = session(&mut rng);
        let amount = *rng.pick(&[0.5, 1.0, 1.0, 2.0, 2.99, 4.99, 5.0]);
        for i in 0..size {
            if rotating && i % rng.int(1, 3) == 0 {
                device = attacker_device(&mut rng, false);
                net = connect(&mut rng, "US", NetKind::Residential);
            }
            if !one_account {
                account = user_id(&mut rng);
                let disposable = rng.chance(0.4);
                mail = random_email(&mut rng, disposable);
            }
            let country = *rng.weighted(&[
                ("US", 70.0),
                ("GB", 10.0),
                ("CA", 10.0),
                ("AU", 5.0),
                ("DE", 5.0),
            ]);
            let stolen = card(&mut rng, country);
            let billing = if rng.chance(0.7) {
                stolen.country.clone()
            } else {
                "US".to_owned()
            };
            let proxy = rotating && rng.chance(0.4);
            plan.add(Visit {
                at: start + f64::from(i) * gap,
                scenario: CARD_TESTING,
                user_id: &account,
                session_id: if one_account {
                    session_id.clone()
                } else {
                    session(&mut rng)
                },
                device: &device,
                net: net.clone(),
                vpn: false,
                proxy,
                tor: false,
                incognito: rng.chance(0.5),
                blocklisted: !rotating && rng.chance(0.3),
                pages: 1,
                card: &stolen,
                amount,
                currency: "USD",
                email: &mail,
                billing: &billing,
                shipping: &billing,
            });
        }
    }
}

/// A fraudster's device. `headless`: automation on a server, which bot
/// detection usually (not always) sees; otherwise an anti-detect browser
/// that often reads as tampering and is poorly recognized.
fn attacker_device(rng: &mut Rng, headless: bool) -> Device {
    Device {
        visitor: rng.alnum(20),
        confidence: if headless {
            rng.between(0.5, 0.95)
        } else {
            rng.between(0.3, 0.9)
        },
        rooted: false,
        jailbroken: false,
        virtual_machine: rng.chance(if headless { 0.4 } else { 0.15 }),
        emulator: false,
        tampering: !headless && rng.chance(0.5),
        bot: (rng.chance(if headless { 0.8 } else { 0.25 })).then_some("bad"),
    }
}

/// BIN attack (enumeration): one issuer's BIN, card numbers generated
/// around it, near-zero amounts, fast, from one tool.
fn bin_attack(plan: &mut Plan) {
    let mut rng = Rng::stream(plan.seed, "bin_attack");
    let size = plan.scaled(f64::from(rng.int(22, 28)), 4);
    let country = *rng.pick(&["US", "US", "GB", "CA"]);
    let base = card(&mut rng, country);
    let device = attacker_device(&mut rng, true);
    let exit = *rng.pick(&["US", "NL", "DE"]);
    let net = connect(&mut rng, exit, NetKind::Hosting);
    let account = user_id(&mut rng);
    let mail = random_email(&mut rng, true);
    let session_id = session(&mut rng);
    let start = rng.between(0.05, 0.9);
    let gap = rng.between(1.0, 4.0) * SECOND;
    let mut last4 = rng.int(0, 9000);
    for i in 0..size {
        last4 = (last4 + rng.int(1, 40)) % 10_000;
        let generated = Card {
            bin: base.bin.clone(),
            last4: format!("{last4:04}"),
            country: base.country.clone(),
        };
        let amount = *rng.pick(&[0.0, 0.0, 0.01, 0.5, 1.0]);
        plan.add(Visit {
            at: start + f64::from(i) * gap,
            scenario: BIN_ATTACK,
            user_id: &account,
            session_id: session_id.clone(),
            device: &device,
            net: net.clone(),
            vpn: false,
            proxy: false,
            tor: false,
            incognito: false,
            blocklisted: rng.chance(0.2),
            pages: 1,
            card: &generated,
            amount,
            currency: "USD",
            email: &mail,
            billing: &generated.country,
            shipping: &generated.country,
        });
    }
}

/// Account takeover: a loyal customer's account, logged into with stolen
/// credentials from a new device, buying with the saved card. Sometimes from
/// the fraudster's country, sometimes through a residential proxy in the
/// victim's own country; often an emulator, a VPN, or an anti-detect
/// browser; higher amounts; often a new shipping country.
fn account_takeover(plan: &mut Plan, victims: &[(String, String, Card, f64, &'static str)]) {
    let mut rng = Rng::stream(plan.seed, "ato");
    if victims.is_empty() {
        return;
    }
    let n = plan.scaled(15.0, 1);
    let mut order: Vec<usize> = (0..victims.len()).collect();
    for i in (1..order.len()).rev() {
        let j = rng.int(0, i as u32) as usize;
        order.swap(i, j);
    }
    for k in 0..n {
        let (user, mail, saved, first, home) = &victims[order[k as usize % order.len()]];
        let mut device = attacker_device(&mut rng, false);
        device.emulator = rng.chance(0.25);
        device.tampering = rng.chance(0.3);
        device.bot = None;
        let local_proxy = rng.chance(0.4);
        let (net, vpn, proxy) = if local_proxy {
            (
                connect(&mut rng, home, NetKind::Residential),
                false,
                rng.chance(0.5),
            )
        } else if rng.chance(0.4) {
            let exit = *rng.pick(&["US", "NL", "DE", "GB"]);
            (connect(&mut rng, exit, NetKind::Hosting), true, false)
        } else {
            let origin = *rng.pick(world::FRAUD_ORIGINS);
            (
                connect(&mut rng, origin, NetKind::Residential),
                false,
                false,
            )
        };
        let card = if rng.chance(0.8) {
            saved.clone()
        } else {
            world::card(&mut rng, home)
        };
        let shipping = if rng.chance(0.4) {
            (*rng.pick(&["US", "GB", "NG", "RO", "UA"])).to_owned()
        } else {
            (*home).to_owned()
        };
        let at = rng.between(*first + 600.0 * SECOND, 1.0).min(0.999);
        let currency = home_currency(home);
        let amount = price(&mut rng, currency, 320.0, 0.6);
        plan.add(Visit {
            at,
            scenario: ATO,
            user_id: user,
            session_id: session(&mut rng),
            device: &device,
            net,
            vpn,
            proxy,
            tor: false,
            incognito: rng.chance(0.4),
            blocklisted: rng.chance(0.1),
            pages: rng.int(1, 3),
            card: &card,
            amount,
            currency,
            email: mail,
            billing: home,
            shipping: &shipping,
        });
    }
}

/// Stolen cards used for goods: a fresh account with the cardholder's
/// billing details, a high amount, the IP far from the card (or a
/// residential proxy near it), often shipping to a US freight forwarder.
fn stolen_cards(plan: &mut Plan) {
    let mut rng = Rng::stream(plan.seed, "stolen_card");
    let n = plan.scaled(25.0, 2);
    for _ in 0..n {
        let country = *rng.weighted(&[
            ("US", 55.0),
            ("GB", 15.0),
            ("CA", 10.0),
            ("DE", 8.0),
            ("FR", 6.0),
            ("AU", 6.0),
        ]);
        let stolen = card_of(&mut rng, country, CardKind::Credit);
        let victim = person(&mut rng);
        let mail = if rng.chance(0.2) {
            random_email(&mut rng, true)
        } else {
            // A fresh webmail account in the cardholder's name.
            format!(
                "{}{}{}@{}",
                victim.first,
                victim.last,
                rng.int(1, 9999),
                rng.pick(&["gmail.com", "outlook.com", "yahoo.com"])
            )
        };
        let mut device = attacker_device(&mut rng, false);
        device.bot = None;
        device.tampering = rng.chance(0.2);
        let near = rng.chance(0.45);
        let (net, vpn, proxy) = if near {
            (
                connect(&mut rng, &stolen.country, NetKind::Residential),
                false,
                rng.chance(0.5),
            )
        } else if rng.chance(0.4) {
            {
                let exit = *rng.pick(&["US", "NL", "DE"]);
                (connect(&mut rng, exit, NetKind::Hosting), true, false)
            }
        } else {
            {
                let origin = *rng.pick(world::FRAUD_ORIGINS);
                (
                    connect(&mut rng, origin, NetKind::Residential),
                    false,
                    false,
                )
            }
        };
        let shipping = if rng.chance(0.4) {
            "US".to_owned()
        } else {
            stolen.country.clone()
        };
        let currency = home_currency(&stolen.country);
        let amount = price(&mut rng, currency, 380.0, 0.6);
        let account = user_id(&mut rng);
        let at = rng.unit();
        plan.add(Visit {
            at,
            scenario: STOLEN_CARD,
            user_id: &account,
            session_id: session(&mut rng),
            device: &device,
            net,
            vpn,
            proxy,
            tor: rng.chance(0.03),
            incognito: rng.chance(0.5),
            blocklisted: rng.chance(0.1),
            pages: rng.int(1, 3),
            card: &stolen,
            amount,
            currency,
            email: &mail,
            billing: &stolen.country,
            shipping: &shipping,
        });
    }
}

/// Checkout bots: a limited release bought out in seconds by scripts, each
/// checkout a different account (aliased emails), shipping to the
/// operator's few addresses, from servers or residential proxies.
fn checkout_bots(plan: &mut Plan) {
    let mut rng = Rng::stream(plan.seed, "checkout_bot");
    let bots = plan.scaled(3.0, 1);
    for _ in 0..bots {
        let country = *rng.pick(&["US", "US", "GB", "DE"]);
        let currency = home_currency(country);
        let size = rng.int(4, 6);
        let on_server = rng.chance(0.5);
        let device = attacker_device(&mut rng, on_server);
        let mut net = connect(
            &mut rng,
            country,
            if on_server {
                NetKind::Hosting
            } else {
                NetKind::Residential
            },
        );
        let operator = person(&mut rng);
        let cards: Vec<Card> = (0..rng.int(1, 3))
            .map(|_| card(&mut rng, country))
            .collect();
        let item = price(&mut rng, currency, 210.0, 0.3);
        let start = rng.between(0.05, 0.9);
        for i in 0..size {
            if !on_server {
                net = connect(&mut rng, country, NetKind::Residential);
            }
            let account = user_id(&mut rng);
            let mail = format!(
                "{}.{}+{}@{}",
                operator.first,
                operator.last,
                rng.lower(4),
                rng.pick(&["gmail.com", "outlook.com"])
            );
            let card = rng.pick(&cards).clone();
            plan.add(Visit {
                at: start + f64::from(i) * rng.between(1.0, 5.0) * SECOND,
                scenario: BOT_CHECKOUT,
                user_id: &account,
                session_id: session(&mut rng),
                device: &device,
                net: net.clone(),
                vpn: false,
                proxy: !on_server && rng.chance(0.4),
                tor: false,
                incognito: rng.chance(0.3),
                blocklisted: rng.chance(0.15),
                pages: 1,
                card: &card,
                amount: item,
                currency,
                email: &mail,
                billing: country,
                shipping: country,
            });
        }
    }
}

/// Promo abuse: one person opens new accounts to take the new-customer
/// discount again and again, from the same phone (sometimes an emulator or
/// an app cloner that gives new device ids), with aliased or throwaway
/// emails, paying with their own one or two cards.
fn multi_accounting(plan: &mut Plan) {
    let mut rng = Rng::stream(plan.seed, "multi_accounting");
    let rings = plan.scaled(4.0, 1);
    for _ in 0..rings {
        let country = home_country(&mut rng);
        let currency = home_currency(country);
        let abuser = person(&mut rng);
        let home = connect(&mut rng, country, NetKind::Residential);
        let cloner = rng.chance(0.3);
        let mut device = Device::honest(&mut rng, true);
        device.emulator = rng.chance(0.3);
        let cards: Vec<Card> = (0..rng.int(1, 2))
            .map(|_| card(&mut rng, country))
            .collect();
        let accounts = rng.int(4, 6);
        let start = rng.between(0.0, 0.7);
        for i in 0..accounts {
            if cloner {
                device.visitor = rng.alnum(20);
                device.confidence = rng.between(0.5, 0.9);
            }
            let account = user_id(&mut rng);
            let mail = match rng.int(0, 2) {
                0 => random_email(&mut rng, true),
                1 => format!(
                    "{}.{}+{}@gmail.com",
                    abuser.first,
                    abuser.last,
                    rng.int(1, 99)
                ),
                _ => format!("{}{}{}@gmail.com", abuser.first, rng.lower(2), abuser.last),
            };
            let vpn = rng.chance(0.3);
            let net = if vpn {
                connect(&mut rng, country, NetKind::Hosting)
            } else {
                home.clone()
            };
            let card = cards[i as usize % cards.len()].clone();
            let amount = price(&mut rng, currency, 45.0, 0.4);
            plan.add(Visit {
                at: start + f64::from(i) * rng.between(600.0, 3_600.0) * SECOND,
                scenario: MULTI_ACCOUNT,
                user_id: &account,
                session_id: session(&mut rng),
                device: &device,
                net,
                vpn,
                proxy: false,
                tor: false,
                incognito: rng.chance(0.6),
                blocklisted: false,
                pages: rng.int(1, 3),
                card: &card,
                amount,
                currency,
                email: &mail,
                billing: country,
                shipping: country,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_plans_the_same_traffic() {
        assert_eq!(plan(7, 40), plan(7, 40));
        assert_ne!(plan(7, 40), plan(8, 40));
    }

    #[test]
    fn the_default_size_is_about_620_with_every_scenario() {
        let p = plan(1, 300);
        assert!((560..=680).contains(&p.len()), "{}", p.len());
        for s in SCENARIOS {
            assert!(p.iter().any(|t| t.scenario == s.name), "{}", s.name);
        }
        let attacks = p.iter().filter(|t| t.fraud).count();
        assert!((100..=200).contains(&attacks), "{attacks}");
        let users: std::collections::HashSet<_> =
            p.iter().filter(|t| !t.fraud).map(|t| &t.user_id).collect();
        assert_eq!(users.len(), 300);
    }

    #[test]
    fn planned_ids_are_valid_and_decode_to_their_persona() {
        let p = plan(3, 300);
        let mut ids = std::collections::HashSet::new();
        for t in &p {
            assert!(t.request_id.len() <= 256, "{}", t.request_id);
            assert!(ids.insert(&t.request_id));
            assert_eq!(Persona::parse(&t.request_id).as_ref(), Some(&t.persona));
            assert!(t.payload.transaction_amount >= 0.0);
            assert!(crate::decision::reference::currency::currency(&t.payload.currency).is_some());
        }
        assert!(p.windows(2).all(|w| w[0].at <= w[1].at));
    }

    #[test]
    fn a_small_population_still_has_every_attack() {
        let p = plan(5, 20);
        for s in SCENARIOS.iter().filter(|s| s.fraud) {
            assert!(p.iter().any(|t| t.scenario == s.name), "{}", s.name);
        }
    }
}
