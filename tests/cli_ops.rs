//! End-to-end tests of the ops console's CLI: `maskline pool import` of 100,000
//! numbers (chunked, bad rows reported by their line in the file), `pool ls`,
//! `pool show`, `pool quarantine|release`, `shipment show` and `audit --since`,
//! as aligned tables by default and JSON with `--json`, against a real
//! `maskline serve` (memory store, port 0).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli_support;

use std::process::Output;
use std::time::Instant;

use cli_support::{json, maskline, text, write, Relay};

fn run(relay: &Relay, key: &str, args: &[&str]) -> Output {
    maskline()
        .args(args)
        .env("MASKLINE_URL", format!("http://{}", relay.addr))
        .env("MASKLINE_KEY", key)
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    let (stdout, stderr) = text(out);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    stdout
}

#[test]
fn import_100k_then_tables_quarantine_shipment_and_audit() {
    let relay = Relay::start(&[("MASKLINE_LOG_LEVEL", "warn")]);
    let key = relay.admin_key();
    let dir = tempfile::tempdir().unwrap();
    ok(&run(
        &relay,
        &key,
        &["pool", "create", "big", "--country", "86"],
    ));

    // 100,000 numbers; lines 10, 50,001 and 100,001 are bad (the header is line 1).
    let mut csv = String::from("number,area\n");
    for i in 0..100_000u32 {
        let line = i + 2;
        if [10, 50_001, 100_001].contains(&line) {
            csv.push_str("not-a-number,sh\n");
        } else {
            csv.push_str(&format!("+86171{i:08},sh\n"));
        }
    }
    let file = write(dir.path(), "big.csv", &csv);
    let t = Instant::now();
    let out = run(
        &relay,
        &key,
        &["pool", "import", "big", file.to_str().unwrap()],
    );
    let took = t.elapsed();
    println!("imported 100,000 numbers in {took:?}");
    let (stdout, _) = text(&out);
    assert!(
        !out.status.success(),
        "bad rows make the import exit non-zero"
    );
    let mut lines = stdout.lines();
    assert_eq!(
        lines.next(),
        Some("added 99997, skipped 0, errors 3"),
        "{stdout}"
    );
    let bad: Vec<&str> = lines.collect();
    assert!(bad[0].starts_with("  line 10: number"), "{stdout}");
    assert!(bad[1].starts_with("  line 50001: number"), "{stdout}");
    assert!(bad[2].starts_with("  line 100001: number"), "{stdout}");

    // A binding, so there is something to show.
    let (status, body) = relay.http(
        "POST",
        "/v1/bindings",
        &key,
        Some(r#"{"pool":"big","shipment_id":"CLI-1","party_a":"+8613900001111","party_b":"+8613700002222","ttl_s":600}"#),
    );
    assert_eq!(status, 201, "{body}");
    let x = json(&body)["number"].as_str().unwrap().to_owned();

    let out = ok(&run(&relay, &key, &["pool", "ls"]));
    let header = out.lines().next().unwrap();
    assert!(
        header.starts_with("pool ") && header.contains("live"),
        "{out}"
    );
    let row = out.lines().find(|l| l.starts_with("big ")).unwrap();
    assert!(row.contains("99997"), "{out}");
    let js = json(&ok(&run(&relay, &key, &["pool", "ls", "--json"])));
    assert!(js["pools"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["live_bindings"] == 1));

    let out = ok(&run(&relay, &key, &["pool", "show", "big", "--limit", "5"]));
    assert!(out.contains("live bindings"), "{out}");
    assert!(out.contains("sizing:"), "{out}");
    assert!(out.contains(&x), "{out}");
    assert!(!out.contains("13900001111"), "a party in clear: {out}");

    // Quarantine needs a reason; it is audited.
    let no_reason = run(&relay, &key, &["pool", "quarantine", "big", &x]);
    assert!(!no_reason.status.success());
    let out = ok(&run(
        &relay,
        &key,
        &["pool", "quarantine", "big", &x, "--reason", "spam reports"],
    ));
    assert!(out.contains("active -> quarantined (audited)"), "{out}");
    let out = ok(&run(
        &relay,
        &key,
        &[
            "pool",
            "release",
            "big",
            &x,
            "--reason",
            "cleared by carrier",
        ],
    ));
    assert!(out.contains("quarantined -> active"), "{out}");

    let out = ok(&run(&relay, &key, &["shipment", "show", "CLI-1"]));
    assert!(out.contains(&x) && out.contains('*'), "{out}");
    assert!(!out.contains("13900001111"), "{out}");
    // Only an auditor reveals.
    let refused = run(
        &relay,
        &key,
        &[
            "shipment",
            "show",
            "CLI-1",
            "--reveal",
            "--reason",
            "complaint",
        ],
    );
    assert!(!refused.status.success());
    assert!(text(&refused).1.contains("HTTP 403"));

    let out = ok(&run(&relay, &key, &["audit", "--since", "1h"]));
    let first = out.lines().next().unwrap();
    assert!(
        first.starts_with("at ") && first.contains("reason"),
        "{out}"
    );
    assert!(
        out.contains("number.quarantine") && out.contains("spam reports"),
        "{out}"
    );
    let csv = ok(&run(
        &relay,
        &key,
        &["audit", "--csv", "--action", "number.release"],
    ));
    assert!(
        csv.starts_with("at,actor,role,action,target,pool,reason"),
        "{csv}"
    );
    assert!(csv.contains("cleared by carrier"), "{csv}");
}
