//! The ops console's API, on the memory store and on real Redis: pool overview
//! and sizing advice, paged number health, audited quarantine / release /
//! retire, shipment lookup with the auditor's audited reveal, and the filtered
//! audit log with CSV export — each checked for every role.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_support;
mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use api_support::*;
use maskline::events::{CallRecord, MemoryRecords, RecordStore};
use maskline::numbers::{NumberHasher, Sealer};
use maskline::store::redis::RedisStore;
use maskline::store::BindingStore;
use serde_json::{json, Value};

async fn redis_store() -> Arc<dyn BindingStore> {
    let hasher = NumberHasher::new(&[7u8; 32]).unwrap();
    Arc::new(
        RedisStore::connect(&common::redis_url(), hasher, Sealer::random())
            .await
            .unwrap(),
    )
}

fn bind(pool: &str, shipment: &str, a: &str, b: &str) -> Value {
    json!({"pool": pool, "shipment_id": shipment, "party_a": a, "party_b": b, "ttl_s": 600})
}

/// The audit entries (as admin) with `action`.
async fn audit_of(c: &Client, action: &str) -> Vec<Value> {
    let r = c
        .get(
            &format!("/v1/audit?action={action}&limit=1000"),
            Some(ADMIN),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["entries"].as_array().unwrap().clone()
}

async fn ops_console_api(store: Arc<dyn BindingStore>) {
    let flaky = FlakyStore::new(store);
    let srv = start(flaky.clone()).await;
    let c = &srv.client;
    let pool = common::unique("ops");
    let xs: Vec<String> = (0..3).map(|_| common::random_e164("+86170")).collect();
    let refs: Vec<&str> = xs.iter().map(String::as_str).collect();
    pool_with_numbers(c, &pool, &refs).await;
    let courier = common::random_e164("+86139");
    let customers: Vec<String> = (0..6).map(|_| common::random_e164("+86137")).collect();
    let ship = common::unique("S");
    let mut bindings = Vec::new();
    for (i, cust) in customers.iter().take(3).enumerate() {
        let r = c
            .post(
                "/v1/bindings",
                Some(APP),
                &bind(&pool, &format!("{ship}-{i}"), &courier, cust),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        bindings.push(r.json());
    }
    // The courier holds every number: the pool is exhausted for them.
    let r = c
        .post(
            "/v1/bindings",
            Some(APP),
            &bind(&pool, &format!("{ship}-x"), &courier, &customers[3]),
        )
        .await;
    assert_eq!(r.code(), "pool_exhausted", "{}", r.text());

    // Overview: pools are not the app's business.
    let ov = format!("/v1/pools/{pool}/overview");
    assert_eq!(c.get(&ov, Some(APP)).await.status, 403);
    assert_eq!(c.get(&ov, None).await.status, 401);
    for key in [OPS, ADMIN, AUDITOR] {
        assert_eq!(c.get(&ov, Some(key)).await.status, 200);
    }
    let r = c.get(&ov, Some(OPS)).await;
    let o = r.json();
    assert_eq!(o["numbers"]["active"], 3, "{o}");
    assert_eq!(o["live_bindings"], 3);
    assert_eq!(o["bindings_per_number"]["max"], 1);
    assert_eq!(o["busiest_parties"][0]["live_bindings"], 3);
    assert_eq!(o["busiest_parties"][0]["exhaustion"], 1.0);
    assert_eq!(o["last_hour"]["allocations"], 3);
    assert_eq!(o["last_hour"]["exhausted"], 1);
    assert_eq!(o["last_day"]["exhausted"], 1);
    assert_eq!(o["hours"].as_array().unwrap().len(), 24);
    assert_eq!(o["sizing"]["add_now"], true, "{o}");
    assert!(o["sizing"]["recommended_numbers"].as_u64().unwrap() > 3);
    assert_no_party_in_clear(&r.text());
    assert!(!r.text().contains(courier.trim_start_matches('+')));
    assert_eq!(
        c.get(&format!("{ov}?x=1"), Some(OPS)).await.code(),
        "unknown_field"
    );
    assert_eq!(
        c.get(
            &format!("/v1/pools/{}/overview", common::unique("no")),
            Some(OPS)
        )
        .await
        .status,
        404
    );

    // Numbers: paged, never one unbounded array.
    let list = format!("/v1/pools/{pool}/numbers");
    assert_eq!(c.get(&list, Some(APP)).await.status, 403);
    let r = c.get(&format!("{list}?limit=2"), Some(OPS)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let p1 = r.json();
    assert_eq!(p1["numbers"].as_array().unwrap().len(), 2);
    let cur = p1["next_cursor"].as_str().unwrap().to_owned();
    let p2 = c
        .get(&format!("{list}?limit=2&cursor={cur}"), Some(OPS))
        .await
        .json();
    assert_eq!(p2["numbers"].as_array().unwrap().len(), 1);
    assert!(p2["next_cursor"].is_null());
    let mut listed: Vec<String> = p1["numbers"]
        .as_array()
        .unwrap()
        .iter()
        .chain(p2["numbers"].as_array().unwrap())
        .map(|n| n["number"].as_str().unwrap().to_owned())
        .collect();
    let mut want = xs.clone();
    want.sort();
    listed.sort();
    assert_eq!(listed, want);
    assert_eq!(p1["numbers"][0]["live_bindings"], 1);
    assert_eq!(p1["numbers"][0]["state"], "active");
    for bad in ["limit=0", "limit=501", "cursor=abc"] {
        let r = c.get(&format!("{list}?{bad}"), Some(OPS)).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }

    // Quarantine: ops and admin, with a reason, audited before it happens.
    let q = bindings[0]["number"].as_str().unwrap().to_owned();
    let qpath = format!("/v1/pools/{pool}/numbers/{}/quarantine", enc(&q));
    let why = json!({"reason": "answer ratio collapsed: spam-flagged"});
    assert_eq!(c.post(&qpath, Some(APP), &why).await.status, 403);
    assert_eq!(c.post(&qpath, Some(AUDITOR), &why).await.status, 403);
    let r = c.post(&qpath, Some(OPS), &json!({})).await;
    assert_eq!(
        (r.status, r.code(), r.field()),
        (400, "missing_field".into(), Some("reason".into()))
    );
    // No audit, no change.
    flaky.fail_audit.store(true, Ordering::SeqCst);
    assert_eq!(c.post(&qpath, Some(OPS), &why).await.status, 503);
    flaky.fail_audit.store(false, Ordering::SeqCst);
    let r = c.get(&ov, Some(OPS)).await.json();
    assert_eq!(r["numbers"]["quarantined"], 0);
    let r = c.post(&qpath, Some(OPS), &why).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        (r.json()["state"].clone(), r.json()["previous"].clone()),
        (json!("quarantined"), json!("active"))
    );
    let audited = audit_of(c, "number.quarantine").await;
    let mine: Vec<&Value> = audited.iter().filter(|e| e["pool"] == pool).collect();
    assert_eq!(mine.len(), 1, "{audited:?}");
    assert_eq!(mine[0]["actor"], "night-ops");
    assert_eq!(mine[0]["target"], q);
    assert_eq!(mine[0]["reason"], "answer ratio collapsed: spam-flagged");
    let o = c.get(&ov, Some(OPS)).await.json();
    assert_eq!(
        (
            o["numbers"]["active"].clone(),
            o["numbers"]["quarantined"].clone()
        ),
        (json!(2), json!(1))
    );

    // New bindings stop landing on it; the existing one lives out.
    for (i, cust) in customers.iter().enumerate().skip(3) {
        let a = common::random_e164("+86139");
        let r = c
            .post(
                "/v1/bindings",
                Some(APP),
                &bind(&pool, &format!("{ship}-q{i}"), &a, cust),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        assert_ne!(r.json()["number"], q.as_str());
    }
    let id0 = bindings[0]["id"].as_str().unwrap();
    assert_eq!(
        c.get(&format!("/v1/bindings/{id0}"), Some(OPS))
            .await
            .status,
        200
    );

    // Return to service, then retire (ops may; each audited).
    let rel = format!("/v1/pools/{pool}/numbers/{}/release", enc(&q));
    let r = c
        .post(
            &rel,
            Some(ADMIN),
            &json!({"reason": "carrier cleared the spam flag"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["state"].clone()),
        (200, json!("active"))
    );
    let ret = format!("/v1/pools/{pool}/numbers/{}/retire", enc(&q));
    let r = c
        .post(
            &ret,
            Some(OPS),
            &json!({"reason": "number returned to carrier"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["state"].clone()),
        (200, json!("retired"))
    );
    assert_eq!(
        audit_of(c, "number.release")
            .await
            .iter()
            .filter(|e| e["pool"] == pool)
            .count(),
        1
    );
    assert_eq!(
        audit_of(c, "number.retire")
            .await
            .iter()
            .filter(|e| e["pool"] == pool)
            .count(),
        1
    );
    let o = c.get(&ov, Some(OPS)).await.json();
    assert_eq!(o["numbers"]["draining"], 1, "{o}");
    let unknown = format!(
        "/v1/pools/{pool}/numbers/{}/quarantine",
        enc("+8617099999999")
    );
    assert_eq!(c.post(&unknown, Some(OPS), &why).await.status, 404);

    // Shipment lookup: masked for ops; the auditor reveals with a reason.
    let sid = format!("{ship}-0");
    let sp = format!("/v1/shipments/{}", sid);
    assert_eq!(c.get(&sp, Some(APP)).await.status, 403);
    let r = c.get(&sp, Some(OPS)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let s = r.json();
    assert_eq!(s["bindings"][0]["number"], q.as_str());
    assert_eq!(s["revealed"], false);
    assert!(!r.text().contains(courier.trim_start_matches('+')));
    assert!(s["bindings"][0]["party_a"].as_str().unwrap().contains('*'));
    let reveal = format!("{sp}?reveal=true&reason=customer%20complaint%20C-17");
    assert_eq!(
        c.get(&reveal, Some(OPS)).await.status,
        403,
        "ops cannot reveal"
    );
    assert_eq!(
        c.get(&reveal, Some(ADMIN)).await.status,
        403,
        "admin cannot reveal"
    );
    let r = c.get(&format!("{sp}?reveal=true"), Some(AUDITOR)).await;
    assert_eq!((r.status, r.field()), (400, Some("reason".into())));
    flaky.fail_audit.store(true, Ordering::SeqCst);
    let r = c.get(&reveal, Some(AUDITOR)).await;
    assert_eq!(r.status, 503, "no audit, no reveal");
    assert!(!r.text().contains(courier.trim_start_matches('+')));
    flaky.fail_audit.store(false, Ordering::SeqCst);
    let r = c.get(&reveal, Some(AUDITOR)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["bindings"][0]["party_a"], courier.as_str());
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    let reveals: Vec<Value> = audit_of(c, "shipment.read_unmasked")
        .await
        .into_iter()
        .filter(|e| e["target"] == sid.as_str())
        .collect();
    assert_eq!(reveals.len(), 1, "exactly the successful reveal is audited");
    assert_eq!(reveals[0]["actor"], "audit-team");
    assert_eq!(reveals[0]["reason"], "customer complaint C-17");
    assert_eq!(reveals[0]["pool"], pool.as_str());
    let r = c
        .get(
            &format!("/v1/shipments/{}", common::unique("none")),
            Some(OPS),
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "shipment_not_found".into()));

    // Audit log: filters and CSV for auditor and admin only.
    assert_eq!(c.get("/v1/audit", Some(OPS)).await.status, 403);
    let r = c
        .get(
            &format!("/v1/audit?pool={pool}&actor=night-ops"),
            Some(AUDITOR),
        )
        .await;
    let e = r.json()["entries"].as_array().unwrap().clone();
    assert_eq!(e.len(), 2, "{e:?}"); // quarantine + retire by ops
    let r = c
        .get(&format!("/v1/audit?pool={pool}&format=csv"), Some(AUDITOR))
        .await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/csv"));
    let text = r.text();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("at,actor,role,action,target,pool,reason")
    );
    assert_eq!(lines.count(), 4, "{text}");
    assert!(text.contains("customer complaint C-17"));
    let r = c.get("/v1/audit?since=yesterday", Some(ADMIN)).await;
    assert_eq!((r.status, r.field()), (400, Some("since".into())));
    let r = c.get("/v1/audit?format=xml", Some(ADMIN)).await;
    assert_eq!(r.status, 400);
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn ops_console_api_on_memory() {
    ops_console_api(memory()).await;
}

#[tokio::test]
async fn ops_console_api_on_redis() {
    ops_console_api(redis_store().await).await;
}

#[tokio::test]
async fn console_is_served_with_a_strict_csp() {
    let srv = start(memory()).await;
    let c = &srv.client;
    let r = c.get("/ops", None).await;
    assert_eq!(
        (r.status, r.header("location").as_deref()),
        (308, Some("/ops/"))
    );
    for (path, ct) in [
        ("/ops/", "text/html"),
        ("/ops/app.js", "text/javascript"),
        ("/ops/app.css", "text/css"),
    ] {
        let r = c.get(path, None).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(r.header("content-type").unwrap().starts_with(ct), "{path}");
        let csp = r.header("content-security-policy").unwrap();
        assert!(csp.contains("default-src 'self'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(
            r.header("x-content-type-options").as_deref(),
            Some("nosniff")
        );
    }
    // No inline script or style, nothing fetched from elsewhere.
    let html = c.get("/ops/", None).await.text();
    assert!(!html.contains("<style"), "inline style");
    assert!(!html.contains("style="), "inline style attribute");
    for tag in html.split("<script").skip(1) {
        assert!(
            tag.trim_start().starts_with("type=\"module\" src=\"/ops/"),
            "{tag}"
        );
    }
    for s in [html, c.get("/ops/app.js", None).await.text()] {
        assert!(!s.contains("http://") || s.contains("http://www.w3.org/2000/svg"));
        assert!(!s.contains("https://"), "no request leaves the machine");
        assert!(!s.contains("document.cookie"));
    }
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn grafana_dashboard_uses_metrics_the_relay_exports() {
    let srv = start(memory()).await;
    let c = &srv.client;
    let pool = common::unique("graf");
    pool_with_numbers(c, &pool, &[&common::random_e164("+86170")]).await;
    let r = c
        .post(
            "/v1/bindings",
            Some(APP),
            &bind(
                &pool,
                "G1",
                &common::random_e164("+86139"),
                &common::random_e164("+86137"),
            ),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(
        c.get(&format!("/v1/pools/{pool}/overview"), Some(OPS))
            .await
            .status,
        200
    );
    let exported = c.get("/metrics", None).await.text();
    assert!(exported.contains(&format!("maskline_pool_live_bindings{{pool=\"{pool}\"}} 1")));
    let dash: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/grafana/maskline-pools.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let mut names = Vec::new();
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            let e = t["expr"].as_str().unwrap();
            for part in e.split("maskline_").skip(1) {
                let name: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                names.push(format!("maskline_{name}"));
            }
        }
    }
    assert!(names.len() > 8);
    for n in names {
        assert!(exported.contains(&n), "{n} is not exported");
    }
    srv.stop().await.unwrap();
}

fn call(pool: &str, x: &str, answered_ms: Option<u64>, shipment: Option<&str>) -> CallRecord {
    let now = maskline::bindings::now_ms();
    CallRecord {
        id: uuid::Uuid::now_v7().to_string(),
        binding_id: Some(uuid::Uuid::now_v7().to_string()),
        shipment_id: shipment.map(str::to_owned),
        pool: Some(pool.to_owned()),
        number: x.to_owned(),
        direction: None,
        caller: "+86 139****0001".into(),
        callee: Some("+86 137****0002".into()),
        trunk: "t1".into(),
        invite_at: now - 60_000,
        ringing_at: None,
        answer_at: answered_ms.map(|_| now - 50_000),
        end_at: now - 1_000,
        duration_ms: answered_ms.unwrap_or(0),
        end_reason: if answered_ms.is_some() {
            "completed"
        } else {
            "no_answer"
        }
        .into(),
        sip_status: if answered_ms.is_some() { 200 } else { 480 },
        hangup_by: None,
        via: None,
        ivr: None,
    }
}

#[tokio::test]
async fn a_number_whose_answer_ratio_collapses_is_suspect_with_evidence() {
    let records = Arc::new(MemoryRecords::new(10_000, Duration::from_secs(86_400 * 30)));
    let srv = start_with_records(memory(), records.clone()).await;
    let c = &srv.client;
    let pool = common::unique("health");
    let xs: Vec<String> = (0..4).map(|i| format!("+861700009000{i}")).collect();
    let refs: Vec<&str> = xs.iter().map(String::as_str).collect();
    pool_with_numbers(c, &pool, &refs).await;
    for (i, x) in xs.iter().enumerate() {
        // Numbers 0-2 answer 8 of 10 calls; number 3 answers 1 of 10 (spam-flagged).
        let answered = if i == 3 { 1 } else { 8 };
        for k in 0..10 {
            let a = (k < answered).then_some(if k == 0 { 4_000 } else { 60_000 });
            records
                .append_call(&call(&pool, x, a, Some("SH-R")))
                .await
                .unwrap();
        }
    }
    let r = c
        .get(&format!("/v1/pools/{pool}/numbers?limit=10"), Some(OPS))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["pool_median_answer_ratio"], 0.8);
    let rows = v["numbers"].as_array().unwrap();
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["calls_24h"], 10, "{row}");
        assert_eq!(row["suspect"], i == 3, "{row}");
    }
    assert_eq!(rows[0]["answer_ratio"], 0.8);
    assert_eq!(rows[0]["short_call_ratio"], 0.125); // 1 of 8 answered under 10 s
    assert_eq!(rows[3]["answer_ratio"], 0.1);
    let ev = rows[3]["evidence"].as_str().unwrap();
    assert!(ev.contains("10%") && ev.contains("80%"), "{ev}");

    // The shipment's call records come with the lookup, masked as recorded.
    let r = c.get("/v1/shipments/SH-R", Some(OPS)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["calls"].as_array().unwrap().len(), 40);
    assert!(r.json()["bindings"].as_array().unwrap().is_empty());
    // As GET /v1/calls shows them (the document's CallRecord): RFC 3339 times.
    let call = &r.json()["calls"][0];
    assert!(call["invite_at"].as_str().unwrap().ends_with('Z'), "{call}");
    assert!(call["end_at"].is_string(), "{call}");
    srv.stop().await.unwrap();
}
