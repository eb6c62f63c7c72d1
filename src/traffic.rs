//! `riskgate simulate-traffic`: a seeded, labelled population of shoppers
//! and attacks played through a riskgate's real HTTP API, with the provider
//! simulator as the device provider (persona request ids, see
//! `simulator/persona.rs`). For each transaction: `POST /fingerprint/ingest`,
//! wait for the device signals, `POST /risk/bin/score`, then the truth as a
//! label (`POST /risk/decisions/{id}/feedback`: `fraud` for attacks, `legit`
//! for honest shoppers), by default for every decision not sent to review:
//! those are left for an analyst, as at a merchant. Prints, per scenario,
//! how many were allowed, reviewed and blocked, the catch rate of attacks
//! and the false-positive rate of honest shoppers. Scenarios and sources:
//! `docs/simulated-traffic.md`.

pub mod population;
mod rng;
mod world;

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use serde::Serialize;
use serde_json::{json, Value};

use population::{Planned, SCENARIOS};

/// When the labels are posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LabelTiming {
    /// Right after each decision, but for the decisions sent to review: those
    /// wait for an analyst (the console's review queue), as they would at a
    /// merchant.
    ExceptReview,
    /// Right after each decision (the label feeds the next decisions).
    Each,
    /// After every transaction was scored, as chargebacks arrive weeks later.
    End,
    /// Never: the decisions wait for an analyst (the console's review queue).
    None,
}

/// Flags of `riskgate simulate-traffic`, each also read from
/// `RISKGATE_TRAFFIC_<FLAG>`.
#[derive(Debug, Clone, clap::Args)]
pub struct TrafficConfig {
    /// Base URL of the riskgate to send the traffic to.
    #[arg(
        long,
        env = "RISKGATE_TRAFFIC_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: url::Url,

    /// The subscriber's API key (`serve --demo` prints one). Not needed with
    /// `--dry-run`.
    #[arg(long, env = "RISKGATE_TRAFFIC_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,

    /// The subscriber the key belongs to.
    #[arg(long, env = "RISKGATE_TRAFFIC_SUBSCRIBER", default_value = "demo")]
    pub subscriber: String,

    /// The same seed plays the same population.
    #[arg(long, env = "RISKGATE_TRAFFIC_SEED", default_value_t = 1)]
    pub seed: u64,

    /// Honest shoppers; the attacks scale with them (300 make about 620
    /// transactions).
    #[arg(long, env = "RISKGATE_TRAFFIC_SHOPPERS", default_value_t = 300,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub shoppers: u32,

    /// Device provider to ingest with (`fingerprint`, `stytch`,
    /// `fingerprintiq`); the subscriber's default when absent. It must point
    /// at the provider simulator (as `serve --demo` does).
    #[arg(long, env = "RISKGATE_TRAFFIC_PROVIDER",
          value_parser = ["fingerprint", "stytch", "fingerprintiq"])]
    pub provider: Option<String>,

    /// Spread the run over this long (e.g. `10m`), placing each transaction
    /// at its time of the nominal day; `0s` sends as fast as answers come.
    #[arg(long, env = "RISKGATE_TRAFFIC_DURATION", default_value = "0s",
          value_parser = humantime::parse_duration)]
    pub duration: Duration,

    /// When labels are posted: `except-review` (after each decision, but
    /// the reviewed ones are left for an analyst), `each` (after each
    /// decision), `end`, or `none`.
    #[arg(
        long,
        env = "RISKGATE_TRAFFIC_LABELS",
        value_enum,
        default_value = "except-review"
    )]
    pub labels: LabelTiming,

    /// How long to wait for an ingested event's signals before scoring anyway.
    #[arg(long, env = "RISKGATE_TRAFFIC_SIGNAL_TIMEOUT", default_value = "10s",
          value_parser = humantime::parse_duration)]
    pub signal_timeout: Duration,

    /// Print the report as JSON (with every decision) instead of a table.
    #[arg(long, env = "RISKGATE_TRAFFIC_JSON", action = clap::ArgAction::SetTrue,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub json: bool,

    /// Print the planned traffic as JSON and send nothing.
    #[arg(long, env = "RISKGATE_TRAFFIC_DRY_RUN", action = clap::ArgAction::SetTrue,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub dry_run: bool,
}

/// The planned traffic, as `--dry-run` prints it.
#[derive(Serialize)]
pub struct DryRun<'a> {
    pub seed: u64,
    pub shoppers: u32,
    pub transactions: usize,
    pub scenarios: BTreeMap<&'static str, usize>,
    pub plan: &'a [Planned],
}

pub fn dry_run(config: &TrafficConfig) -> anyhow::Result<String> {
    let plan = population::plan(config.seed, config.shoppers);
    let mut scenarios = BTreeMap::new();
    for t in &plan {
        *scenarios.entry(t.scenario).or_default() += 1;
    }
    let out = DryRun {
        seed: config.seed,
        shoppers: config.shoppers,
        transactions: plan.len(),
        scenarios,
        plan: &plan,
    };
    Ok(serde_json::to_string_pretty(&out)?)
}

/// One scenario's line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub scenario: &'static str,
    pub fraud: bool,
    pub summary: &'static str,
    pub transactions: u64,
    pub allow: u64,
    pub review: u64,
    pub block: u64,
    /// Transactions that could not be scored.
    pub errors: u64,
    /// Attacks: share reviewed or blocked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catch_rate: Option<f64>,
    /// Honest shoppers: share reviewed or blocked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub false_positive_rate: Option<f64>,
}

impl Row {
    fn flagged(&self) -> Option<f64> {
        let scored = self.allow + self.review + self.block;
        (scored > 0).then(|| (self.review + self.block) as f64 / scored as f64)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Totals {
    pub good_transactions: u64,
    pub attack_transactions: u64,
    /// Honest transactions reviewed or blocked, over all honest ones.
    pub false_positive_rate: Option<f64>,
    /// The mean over attack scenarios of their catch rates (each attack kind
    /// counts the same, however many transactions it has).
    pub mean_catch_rate: Option<f64>,
    /// Attack transactions reviewed or blocked, over all attack ones.
    pub attack_transactions_caught: Option<f64>,
}

/// One transaction's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub seq: usize,
    pub scenario: &'static str,
    pub label: &'static str,
    pub request_id: String,
    pub decision_id: Option<String>,
    pub action: Option<String>,
    pub risk_score: Option<f64>,
    pub device_status: Option<String>,
    pub labelled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub seed: u64,
    pub shoppers: u32,
    pub url: String,
    pub transactions: usize,
    pub scored: usize,
    pub labelled: usize,
    pub errors: usize,
    pub elapsed_ms: u128,
    pub scenarios: Vec<Row>,
    pub totals: Totals,
    pub decisions: Vec<Outcome>,
}

fn label_of(t: &Planned) -> &'static str {
    if t.fraud {
        "fraud"
    } else {
        "legit"
    }
}

struct Api {
    client: reqwest::Client,
    base: String,
    key: String,
}

/// How many device events are ingested ahead of the transaction being
/// scored (a device is identified when the shopper arrives, before checkout).
const LOOKAHEAD: usize = 16;
/// Attempts for a call answered 429 or 503.
const ATTEMPTS: u32 = 5;

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self
                .client
                .request(method.clone(), format!("{}{path}", self.base))
                .header("X-API-Key", &self.key);
            if let Some(body) = body {
                req = req.json(body);
            }
            let resp = req
                .send()
                .await
                .with_context(|| format!("{method} {path}"))?;
            let status = resp.status().as_u16();
            let wait = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(1);
            let text = resp.text().await.unwrap_or_default();
            if matches!(status, 429 | 503) && attempt < ATTEMPTS {
                tokio::time::sleep(Duration::from_secs(wait.min(5))).await;
                continue;
            }
            let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
            return Ok((status, value));
        }
    }

    async fn ingest(
        &self,
        t: &Planned,
        subscriber: &str,
        provider: Option<&str>,
    ) -> anyhow::Result<()> {
        let mut body = json!({
            "request_id": t.request_id,
            "subscriber_id": subscriber,
            "session_id": t.session_id,
            "user_id": t.user_id,
        });
        if let Some(p) = provider {
            body["provider"] = json!(p);
        }
        let (status, answer) = self
            .call(reqwest::Method::POST, "/fingerprint/ingest", Some(&body))
            .await?;
        if status != 202 {
            return Err(anyhow!("ingest answered {status}: {answer}"));
        }
        Ok(())
    }

    /// Waits until the event is no longer pending; its status.
    async fn ready(&self, request_id: &str, timeout: Duration) -> anyhow::Result<String> {
        let started = Instant::now();
        let path = format!("/fingerprint/events/{request_id}");
        loop {
            let (status, event) = self.call(reqwest::Method::GET, &path, None).await?;
            if status != 200 {
                return Err(anyhow!("event read answered {status}: {event}"));
            }
            let state = event["status"].as_str().unwrap_or("unknown").to_owned();
            if state != "pending" || started.elapsed() >= timeout {
                return Ok(state);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn score(
        &self,
        t: &Planned,
        subscriber: &str,
    ) -> anyhow::Result<(String, String, f64, String)> {
        let p = &t.payload;
        let body = json!({
            "request_id": t.request_id,
            "subscriber_id": subscriber,
            "payload": {
                "transaction_amount": p.transaction_amount,
                "currency": p.currency,
                "bin": p.bin,
                "last4": p.last4,
                "user_id": t.user_id,
                "session_id": t.session_id,
                "external_transaction_number": p.external_transaction_number,
                "email": p.email,
                "ip_address": p.ip_address,
                "billing_country": p.billing_country,
                "shipping_country": p.shipping_country,
            }
        });
        let (status, answer) = self
            .call(reqwest::Method::POST, "/risk/bin/score", Some(&body))
            .await?;
        if status != 200 {
            return Err(anyhow!("score answered {status}: {answer}"));
        }
        let id = answer["decision_id"]
            .as_str()
            .ok_or_else(|| anyhow!("score answer without decision_id: {answer}"))?
            .to_owned();
        let action = answer["result"]["action"].as_str().unwrap_or("").to_owned();
        let score = answer["result"]["risk_score"].as_f64().unwrap_or(0.0);
        let device = answer["input"]["device_status"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        Ok((id, action, score, device))
    }

    async fn label(&self, decision_id: &str, label: &str) -> anyhow::Result<()> {
        let path = format!("/risk/decisions/{decision_id}/feedback");
        let (status, answer) = self
            .call(
                reqwest::Method::POST,
                &path,
                Some(&json!({ "label": label })),
            )
            .await?;
        if status != 200 {
            return Err(anyhow!("feedback answered {status}: {answer}"));
        }
        Ok(())
    }
}

/// Plays the population against the riskgate at `config.url`.
pub async fn run(config: &TrafficConfig) -> anyhow::Result<Report> {
    let key = config
        .api_key
        .clone()
        .filter(|k| !k.trim().is_empty())
        .ok_or_else(|| anyhow!("--api-key is required (serve --demo prints one)"))?;
    let api = Api {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?,
        base: config.url.as_str().trim_end_matches('/').to_owned(),
        key,
    };
    let plan = population::plan(config.seed, config.shoppers);
    let subscriber = config.subscriber.as_str();
    let provider = config.provider.as_deref();
    let started = Instant::now();
    let mut outcomes: Vec<Outcome> = plan
        .iter()
        .map(|t| Outcome {
            seq: t.seq,
            scenario: t.scenario,
            label: label_of(t),
            request_id: t.request_id.clone(),
            decision_id: None,
            action: None,
            risk_score: None,
            device_status: None,
            labelled: false,
            error: None,
        })
        .collect();

    let mut ingested: VecDeque<(usize, anyhow::Result<()>)> = VecDeque::new();
    let mut next_ingest = 0;
    for (i, t) in plan.iter().enumerate() {
        while next_ingest < plan.len() && next_ingest < i + LOOKAHEAD {
            let result = api.ingest(&plan[next_ingest], subscriber, provider).await;
            ingested.push_back((next_ingest, result));
            next_ingest += 1;
        }
        let ingest = match ingested.pop_front() {
            Some((j, result)) if j == i => result,
            _ => Err(anyhow!("internal: ingest out of order")),
        };
        if !config.duration.is_zero() {
            let due = config.duration.mul_f64(t.at);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        let out = &mut outcomes[i];
        if let Err(err) = ingest {
            out.error = Some(format!("{err:#}"));
            continue;
        }
        if let Err(err) = api.ready(&t.request_id, config.signal_timeout).await {
            out.error = Some(format!("{err:#}"));
            continue;
        }
        match api.score(t, subscriber).await {
            Ok((id, action, score, device)) => {
                out.decision_id = Some(id);
                out.action = Some(action);
                out.risk_score = Some(score);
                out.device_status = Some(device);
            }
            Err(err) => {
                out.error = Some(format!("{err:#}"));
                continue;
            }
        }
        let as_it_goes = matches!(config.labels, LabelTiming::Each | LabelTiming::ExceptReview);
        if as_it_goes && config.labels.labels(out) {
            label_one(&api, out).await;
        }
    }
    if config.labels == LabelTiming::End {
        for out in &mut outcomes {
            label_one(&api, out).await;
        }
    }
    Ok(report(config, &plan, outcomes, started.elapsed()))
}

impl LabelTiming {
    /// Whether the run labels this decision at all.
    fn labels(self, out: &Outcome) -> bool {
        match self {
            Self::Each | Self::End => true,
            Self::ExceptReview => out.action.as_deref() != Some("review"),
            Self::None => false,
        }
    }
}

async fn label_one(api: &Api, out: &mut Outcome) {
    let Some(id) = out.decision_id.clone() else {
        return;
    };
    match api.label(&id, out.label).await {
        Ok(()) => out.labelled = true,
        Err(err) => out.error = Some(format!("{err:#}")),
    }
}

fn report(
    config: &TrafficConfig,
    plan: &[Planned],
    decisions: Vec<Outcome>,
    elapsed: Duration,
) -> Report {
    let mut rows: Vec<Row> = SCENARIOS
        .iter()
        .map(|s| Row {
            scenario: s.name,
            fraud: s.fraud,
            summary: s.summary,
            transactions: 0,
            allow: 0,
            review: 0,
            block: 0,
            errors: 0,
            catch_rate: None,
            false_positive_rate: None,
        })
        .collect();
    for out in &decisions {
        let Some(row) = rows.iter_mut().find(|r| r.scenario == out.scenario) else {
            continue;
        };
        row.transactions += 1;
        match out.action.as_deref() {
            Some("allow") => row.allow += 1,
            Some("review") => row.review += 1,
            Some("block") => row.block += 1,
            _ => row.errors += 1,
        }
    }
    for row in &mut rows {
        if row.fraud {
            row.catch_rate = row.flagged();
        } else {
            row.false_positive_rate = row.flagged();
        }
    }
    let sum = |fraud: bool, f: fn(&Row) -> u64| -> u64 {
        rows.iter().filter(|r| r.fraud == fraud).map(f).sum()
    };
    let good_scored = sum(false, |r| r.allow + r.review + r.block);
    let good_flagged = sum(false, |r| r.review + r.block);
    let bad_scored = sum(true, |r| r.allow + r.review + r.block);
    let bad_flagged = sum(true, |r| r.review + r.block);
    let catches: Vec<f64> = rows.iter().filter_map(|r| r.catch_rate).collect();
    let totals = Totals {
        good_transactions: sum(false, |r| r.transactions),
        attack_transactions: sum(true, |r| r.transactions),
        false_positive_rate: (good_scored > 0).then(|| good_flagged as f64 / good_scored as f64),
        mean_catch_rate: (!catches.is_empty())
            .then(|| catches.iter().sum::<f64>() / catches.len() as f64),
        attack_transactions_caught: (bad_scored > 0)
            .then(|| bad_flagged as f64 / bad_scored as f64),
    };
    Report {
        seed: config.seed,
        shoppers: config.shoppers,
        url: config.url.to_string(),
        transactions: plan.len(),
        scored: decisions.iter().filter(|d| d.decision_id.is_some()).count(),
        labelled: decisions.iter().filter(|d| d.labelled).count(),
        errors: decisions.iter().filter(|d| d.error.is_some()).count(),
        elapsed_ms: elapsed.as_millis(),
        scenarios: rows,
        totals,
        decisions,
    }
}

fn percent(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_owned(), |x| format!("{:.1}%", x * 100.0))
}

/// The report as a table.
pub fn table(r: &Report) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<18} {:<6} {:>5} {:>6} {:>6} {:>6} {:>7} {:>7}",
        "scenario", "kind", "tx", "allow", "review", "block", "catch", "FP"
    );
    for row in &r.scenarios {
        let _ = writeln!(
            out,
            "{:<18} {:<6} {:>5} {:>6} {:>6} {:>6} {:>7} {:>7}",
            row.scenario,
            if row.fraud { "attack" } else { "good" },
            row.transactions,
            row.allow,
            row.review,
            row.block,
            percent(row.catch_rate),
            percent(row.false_positive_rate),
        );
    }
    let t = &r.totals;
    let _ = writeln!(
        out,
        "good shoppers: {} transactions, false-positive rate {}",
        t.good_transactions,
        percent(t.false_positive_rate)
    );
    let _ = writeln!(
        out,
        "attacks: {} transactions, mean catch rate over {} kinds {} ({} of attack transactions)",
        t.attack_transactions,
        r.scenarios.iter().filter(|s| s.fraud).count(),
        percent(t.mean_catch_rate),
        percent(t.attack_transactions_caught)
    );
    let _ = write!(
        out,
        "seed {}, {} shoppers, {} transactions, {} scored, {} labelled, {} errors, {:.1} s",
        r.seed,
        r.shoppers,
        r.transactions,
        r.scored,
        r.labelled,
        r.errors,
        r.elapsed_ms as f64 / 1000.0
    );
    if let Some(first) = r.decisions.iter().find_map(|d| d.error.as_deref()) {
        let _ = write!(out, "\nfirst error: {first}");
    }
    out
}
