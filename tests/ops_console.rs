//! End-to-end test of the ops web console in a real browser: the relay's API
//! runs in-process on 127.0.0.1:0, bindings are created through the API, then
//! `node tests/console/e2e.mjs` drives headless Chromium (Debian's `chromium`,
//! through the locked `playwright-core` of `tests/console`; `scripts/test`
//! installs both) through sign-in, the pool page (counts, charts, sizing; must
//! render within 1 s), quarantining a number and seeing it take no new bindings,
//! shipment lookup masked for ops and revealed by an auditor, the audit log and
//! its CSV export, and a phone-sized screen. Screenshots of the main pages are
//! kept in `<target>/ops-screenshots/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_support;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use api_support::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_end_to_end_in_chromium() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "run `npm ci` in tests/console (scripts/test does)"
    );
    assert!(
        Path::new("/usr/bin/chromium").exists() || std::env::var_os("CHROMIUM").is_some(),
        "install chromium (`apt-get install -y chromium`; scripts/test does)"
    );
    let srv = start(memory()).await;
    let c = &srv.client;
    let numbers = ["+8617000000301", "+8617000000302", "+8617000000303"];
    pool_with_numbers(c, "console", &numbers).await;
    let mut load: HashMap<String, u64> = HashMap::new();
    let mut first = None;
    for i in 0..5 {
        let r = c
            .post(
                "/v1/bindings",
                Some(APP),
                &json!({"pool": "console", "shipment_id": format!("E2E-{i}"),
                        "party_a": format!("+86139000077{i:02}"),
                        "party_b": format!("+86137000088{i:02}"), "ttl_s": 3600}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let x = r.json()["number"].as_str().unwrap().to_owned();
        *load.entry(x.clone()).or_default() += 1;
        first.get_or_insert(x);
    }
    let q = first.unwrap();
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("ops-screenshots");
    let cfg = json!({
        "url": format!("http://{}", c.addr),
        "app": APP, "ops": OPS, "auditor": AUDITOR,
        "pool": "console", "numbers": numbers.len(), "live": 5,
        "quarantine": q, "quarantine_live": load[&q],
        "shipment": "E2E-0", "party_a": "+8613900007700",
        "screenshots": shots.display().to_string(),
    });
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("e2e.mjs")
            .arg(cfg.to_string())
            .current_dir(&dir)
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(out.status.success(), "e2e failed:\n{stdout}\n{stderr}");
    for f in [
        "pools.png",
        "pool.png",
        "shipment-masked.png",
        "shipment-revealed.png",
        "audit.png",
        "pool-phone.png",
    ] {
        assert!(shots.join(f).is_file(), "screenshot {f}");
    }
    srv.stop().await.unwrap();
}
