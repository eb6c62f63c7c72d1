//! The normalized device model every provider adapter maps onto.
//!
//! Every field is optional: "the provider did not say" (`None`) is different
//! from "the provider said no" (`Some(false)`), and rules must be able to tell.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Counts of events and distinct values the provider saw for this device.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProviderVelocity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_5m: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_1h: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_24h: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distinct_ip_1h: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distinct_ip_24h: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distinct_country_1h: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distinct_country_24h: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeviceSignals {
    /// The provider's stable device id (Fingerprint visitor id, Stytch
    /// visitor fingerprint, FingerprintIQ visitor id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visitor_id: Option<String>,
    /// Identification confidence in [0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// `not_detected`, `good` (a known good bot such as a search crawler) or `bad`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_probability: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpn: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tor: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incognito: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tampering: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_machine: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emulator: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jailbroken: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rooted: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    /// ISO 3166 alpha-2 of the IP's geolocation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_asn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_datacenter: Option<bool>,
    /// The IP is on the provider's blocklist (attack source, spam, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_blocklisted: Option<bool>,
    /// The provider's overall suspicion score, normalized to [0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspect_score: Option<f64>,
    /// The provider's own recommendation, lowercased (`allow`, `challenge`, `block`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_verdict: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verdict_reasons: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub velocity: Option<ProviderVelocity>,
    /// Unix milliseconds of the identification event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<i64>,
    /// What kind of bot, in the provider's words (`headlessChrome`,
    /// `chatgpt_agent`, `headless_browser_automation`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_type: Option<String>,
    /// The provider's classification of the device (Stytch
    /// `detected_device_type`, e.g. `MAC_ARM`, `UNKNOWN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_type: Option<String>,
    /// Public name of the IP's autonomous system (`COMCAST-7922`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_asn_name: Option<String>,
    /// Frida (dynamic instrumentation toolkit) detected on the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frida: Option<bool>,
    /// The app's traffic to the provider was intercepted (man in the middle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mitm_attack: Option<bool>,
    /// The merchant itself flagged this event as suspect at the provider
    /// (Fingerprint / FingerprintIQ `suspect`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marked_suspect: Option<bool>,
    /// Parts of the answer the provider could not compute although the call
    /// succeeded, as `"<product>: <error code>"` (Fingerprint v3 per-product
    /// errors, e.g. `"botd: TooManyRequests"`). The fields those products
    /// would have filled stay `None`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partial_errors: Vec<String>,
}
