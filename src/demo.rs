//! `riskgate serve --demo`: a self-contained tour. The provider simulator runs
//! in-process, the adapters point at it, and a `demo` subscriber with
//! credentials for all three providers and a fresh API key is ready to use.

use serde_json::{json, Map, Value};

use crate::providers::Provider;
use crate::service::operator;
use crate::service::ServiceError;
use crate::state::AppState;
use crate::store::Actor;

pub const DEMO_SUBSCRIBER: &str = "demo";

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Creates (or reuses) the demo subscriber, stores simulator credentials for
/// every provider, and issues a new API key, which it returns.
pub async fn prepare(app: &AppState) -> Result<String, ServiceError> {
    let store = app.store.as_ref();
    let actor = Actor::System("demo".into());
    if store.get_subscriber(DEMO_SUBSCRIBER).await?.is_none() {
        let body = object(json!({"id": DEMO_SUBSCRIBER, "name": "Demo merchant"}));
        operator::create_subscriber(store, &app.sealer, &body, &actor).await?;
    }
    // Fingerprint first: it is the default provider of the demo subscriber.
    let credentials = [
        (
            Provider::Fingerprint,
            json!({"secret_key": "demo-fingerprint-secret"}),
        ),
        (
            Provider::Stytch,
            json!({"project_id": "project-test-demo", "secret": "secret-test-demo"}),
        ),
        (
            Provider::Fingerprintiq,
            json!({"secret_key": "fiq_secret_demo"}),
        ),
    ];
    for (provider, body) in credentials {
        operator::put_provider(
            store,
            &app.sealer,
            DEMO_SUBSCRIBER,
            provider,
            &object(body),
            &actor,
        )
        .await?;
    }
    app.ingest
        .providers
        .remove_where(|subscriber, _| subscriber == DEMO_SUBSCRIBER);
    let key = operator::create_key(store, DEMO_SUBSCRIBER, Some("demo"), &actor).await?;
    Ok(key.api_key)
}

/// The ready-to-paste commands printed at a demo start.
pub fn instructions(base: &str, api_key: &str) -> String {
    format!(
        "riskgate demo: subscriber '{DEMO_SUBSCRIBER}', API key (shown once): {api_key}\n\
         Ingest a device event (ids starting with risky-, notfound-, ratelimit-, slow- pick the simulator's behaviour):\n\
         \x20 curl -s -X POST {base}/fingerprint/ingest -H 'X-API-Key: {api_key}' -H 'Content-Type: application/json' \\\n\
         \x20   -d '{{\"request_id\": \"demo-1\", \"subscriber_id\": \"{DEMO_SUBSCRIBER}\", \"session_id\": \"sess-1\", \"user_id\": \"user-1\"}}'\n\
         Read its normalized signals:\n\
         \x20 curl -s {base}/fingerprint/events/demo-1 -H 'X-API-Key: {api_key}'\n\
         Play a day of honest shoppers and attacks through it (the reviewed payments are left for an analyst):\n\
         \x20 riskgate simulate-traffic --url {base} --api-key {api_key}\n\
         Then work them in the console, signed in with the admin token: {base}/console"
    )
}
