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
}
