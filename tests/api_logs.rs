//! What the API writes to the log: one span per request naming the method, the
//! route template and the API key's name, and never a party number in clear —
//! not on success, not on errors, not on an audited reveal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use api_support::*;
use maskline::store::memory::MemoryStore;
use serde_json::json;

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_name_route_and_key_but_never_a_party_number() {
    let buf = Buf::default();
    let writer = buf.clone();
    tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .init();

    let srv = start(Arc::new(MemoryStore::new())).await;
    let c = &srv.client;
    pool_with_numbers(c, "logs", &["+8617000000301"]).await;
    let courier = "+8613900000301";
    let customer = "+8613700000301";
    let b = c
        .post(
            "/v1/bindings",
            Some(APP),
            &json!({"pool": "logs", "shipment_id": "L1", "party_a": courier,
                    "party_b": customer, "ttl_s": 600}),
        )
        .await
        .json();
    let id = b["id"].as_str().unwrap();
    // Errors that involve numbers.
    let _ = c
        .post(
            "/v1/bindings",
            Some(APP),
            &json!({"pool": "logs", "shipment_id": "L2", "party_a": courier,
                    "party_b": customer, "ttl_s": 600}),
        )
        .await;
    let _ = c
        .post(
            "/v1/bindings",
            Some(APP),
            &json!({"pool": "logs", "shipment_id": "L1", "party_a": courier,
                    "party_b": "+8613700000399", "ttl_s": 600}),
        )
        .await;
    let _ = c.get(&format!("/v1/no/{}", enc(courier)), Some(APP)).await;
    let _ = c
        .get(
            &format!(
                "/v1/pools/logs/numbers/{}/route?caller={}",
                enc("+8617000000301"),
                enc(customer)
            ),
            Some(OPS),
        )
        .await;
    let r = c
        .get(&format!("/v1/bindings/{id}?reveal=true"), Some(AUDITOR))
        .await;
    assert_eq!(r.status, 200);
    let _ = c
        .patch(
            &format!("/v1/bindings/{id}"),
            Some(APP),
            &json!({"party_a": "+8613900000302"}),
        )
        .await;
    srv.stop().await.unwrap();

    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    for n in [courier, customer, "+8613700000399", "+8613900000302"] {
        assert!(
            !logs.contains(n.trim_start_matches('+')),
            "{n} in clear in the log:\n{logs}"
        );
    }
    assert!(logs.contains("\"http.route\":\"/v1/bindings\""), "{logs}");
    assert!(logs.contains("\"http.route\":\"unmatched\""), "{logs}");
    assert!(logs.contains("\"api.key\":\"platform\""), "{logs}");
    assert!(logs.contains("\"api.key\":\"audit-team\""), "{logs}");
    assert!(logs.contains("unmasked read (audited)"), "{logs}");
    assert!(logs.contains("\"http.method\":\"POST\""), "{logs}");
}
