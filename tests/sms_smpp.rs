//! SMS over SMPP, end to end: the real `maskline serve` binary binds (2
//! transceiver sessions) to an independent SMPP implementation acting as the SMS
//! centre (node-smpp, `tests/smsc/`), with a private real `redis-server`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli_support;
mod common;
mod sms_support;

use std::time::Duration;

use cli_support::{json, Relay};
use common::OwnRedis;
use serde_json::{json as j, Value};
use sms_support::*;

const WAIT: Duration = Duration::from_secs(20);

struct Setup {
    _redis: OwnRedis,
    _dir: tempfile::TempDir,
    smsc: Smsc,
    relay: Relay,
    key: String,
    b: Bound,
    env: Vec<(&'static str, String)>,
}

fn setup() -> Setup {
    let redis = OwnRedis::start();
    let mut smsc = Smsc::start(0);
    let dir = tempfile::tempdir().unwrap();
    let cfg = smpp_config(dir.path(), smsc.port);
    let (mut env, key) = cli_support::redis_env(&redis.url());
    env.push(("MASKLINE_CONFIG", cfg.display().to_string()));
    env.push(("MASKLINE_SMS_CONSUMER", "relay-a".to_string()));
    let relay = Relay::start(&refs(&env));
    smsc.wait(|e| e["event"] == "bound" && e["sessions"] == 2, WAIT);
    let b = bind(&relay, &key);
    Setup {
        _redis: redis,
        _dir: dir,
        smsc,
        relay,
        key,
        b,
        env,
    }
}

fn digits(n: &str) -> String {
    n.trim_start_matches('+').to_string()
}

fn submits_to(smsc: &mut Smsc, dest: &str, n: usize) -> Vec<Value> {
    let d = digits(dest);
    smsc.collect(
        n,
        |e| e["event"] == "submit" && e["dest"] == d.as_str(),
        WAIT,
    )
}

/// Joins the parts of one concatenated text in order of their UDH sequence.
fn joined(parts: &[Value]) -> String {
    let mut v: Vec<(u64, String)> = parts
        .iter()
        .map(|p| {
            let udh = p["udh"].as_array().cloned().unwrap_or_default();
            let seq = udh
                .first()
                .and_then(|u| u.as_array())
                .and_then(|u| u.last())
                .and_then(Value::as_u64)
                .unwrap_or(1);
            (seq, p["text"].as_str().unwrap().to_string())
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, t)| t).collect()
}

#[test]
fn courier_text_via_the_smsc_reaches_the_customer_from_x_and_the_reply_returns() {
    let mut s = setup();
    s.smsc.send(j!({"cmd": "receipts", "on": true}));
    let b = &s.b;
    s.smsc
        .deliver("c1", &b.courier, &b.x, "I'm at your door", j!({}));
    let r = s
        .smsc
        .wait(|e| e["event"] == "deliver_resp" && e["tag"] == "c1", WAIT);
    assert_eq!(r["status"], 0);
    let out = submits_to(&mut s.smsc, &b.customer, 1);
    assert_eq!(out.len(), 1, "{:?}", s.smsc.seen);
    assert_eq!(out[0]["source"], digits(&b.x));
    assert_eq!(out[0]["text"], "I'm at your door");
    assert_eq!(out[0]["data_coding"], 0);

    s.smsc
        .deliver("c2", &b.customer, &b.x, "Leave it at the gate", j!({}));
    let out = submits_to(&mut s.smsc, &b.courier, 1);
    assert_eq!(out[0]["source"], digits(&b.x));
    assert_eq!(out[0]["text"], "Leave it at the gate");

    // Receipts from the SMSC mark both texts delivered.
    let list = messages_until(
        &s.relay,
        &s.key,
        &format!("shipment_id={}", b.shipment),
        |l| l.len() == 2 && l.iter().all(|m| m["status"] == "delivered"),
    );
    assert!(list.iter().all(|m| m["status"] == "delivered"), "{list:?}");
    assert_eq!(list[0]["carrier_in"], "smpp:smsc1");
    assert_eq!(list[0]["direction"], "customer_to_courier");
    let text = serde_json::to_string(&list).unwrap();
    assert!(!text.contains(&digits(&b.customer)) && !text.contains(&digits(&b.courier)));
}

#[test]
fn a_long_chinese_text_is_reassembled_and_leaves_in_ucs2_parts() {
    let mut s = setup();
    let b = &s.b;
    let msg: String = "您好，快递已到楼下，请下楼取件，谢谢配合！".repeat(7); // 147 characters
    let chars: Vec<char> = msg.chars().collect();
    let parts: Vec<String> = chars.chunks(67).map(|c| c.iter().collect()).collect();
    assert_eq!(parts.len(), 3);
    // Parts arrive out of order, with a UDH (8-bit reference).
    for seq in [3usize, 1, 2] {
        s.smsc.deliver(
            &format!("p{seq}"),
            &b.courier,
            &b.x,
            &parts[seq - 1],
            j!({"coding": "ucs2", "udh": [42, 3, seq]}),
        );
    }
    let resps = s.smsc.collect(
        3,
        |e| e["event"] == "deliver_resp" && e["tag"].as_str().is_some_and(|t| t.starts_with('p')),
        WAIT,
    );
    assert!(resps.iter().all(|r| r["status"] == 0), "{resps:?}");
    let out = submits_to(&mut s.smsc, &b.customer, 3);
    assert_eq!(out.len(), 3, "{:?}", s.smsc.seen);
    for p in &out {
        assert_eq!(p["data_coding"], 8);
        assert!(p["text"].as_str().unwrap().chars().count() <= 67, "{p}");
        assert_eq!(p["source"], digits(&b.x));
    }
    assert_eq!(joined(&out), msg);

    // The same with sar_* TLVs instead of a UDH, two parts.
    let reply = "好的，我马上下来，麻烦您稍等两分钟。".repeat(5);
    let rc: Vec<char> = reply.chars().collect();
    let (a, z): (String, String) = (rc[..50].iter().collect(), rc[50..].iter().collect());
    s.smsc.deliver(
        "s2",
        &b.customer,
        &b.x,
        &z,
        j!({"coding": "ucs2", "sar": [7, 2, 2]}),
    );
    s.smsc.deliver(
        "s1",
        &b.customer,
        &b.x,
        &a,
        j!({"coding": "ucs2", "sar": [7, 2, 1]}),
    );
    let out = submits_to(&mut s.smsc, &b.courier, 2);
    assert_eq!(out.len(), 2, "{:?}", s.smsc.seen);
    assert_eq!(joined(&out), reply);
    let list = messages_until(
        &s.relay,
        &s.key,
        &format!("binding_id={}", b.binding_id),
        |l| l.len() == 2 && l.iter().all(|m| m["status"] == "submitted"),
    );
    let segs: Vec<u64> = list
        .iter()
        .map(|m| m["segments"].as_u64().unwrap())
        .collect();
    assert_eq!(segs, [2, 3]);
}

#[test]
fn gsm_text_with_extension_characters_keeps_them_and_splits_on_septets() {
    let mut s = setup();
    let b = &s.b;
    let short = "Gate {12} [B] costs €5 ~ ok|^\\";
    s.smsc.deliver("g1", &b.courier, &b.x, short, j!({}));
    let out = submits_to(&mut s.smsc, &b.customer, 1);
    assert_eq!(out[0]["text"], short);
    assert_eq!(out[0]["data_coding"], 0);
    assert!(out[0]["udh"].as_array().unwrap().is_empty());

    // 150 plain characters and 6 euro signs: 162 septets, so two parts of at most
    // 153 septets; an escape sequence is never split.
    let long = format!("{}€€€€€€", "a".repeat(150));
    s.smsc.deliver("g2", &b.customer, &b.x, &long[..], j!({}));
    let out = submits_to(&mut s.smsc, &b.courier, 2);
    assert_eq!(out.len(), 2, "{:?}", s.smsc.seen);
    for p in &out {
        assert_eq!(p["data_coding"], 0);
        let septets: usize = p["text"]
            .as_str()
            .unwrap()
            .chars()
            .map(|c| if c == '€' { 2 } else { 1 })
            .sum();
        assert!(septets <= 153, "{septets}");
    }
    assert_eq!(joined(&out), long);
}

#[test]
fn a_retransmitted_deliver_sm_is_relayed_once() {
    let mut s = setup();
    let b = &s.b;
    s.smsc
        .deliver("d", &b.courier, &b.x, "ring twice", j!({"repeat": 2}));
    let resps = s
        .smsc
        .collect(2, |e| e["event"] == "deliver_resp" && e["tag"] == "d", WAIT);
    assert!(resps.iter().all(|r| r["status"] == 0), "{resps:?}");
    submits_to(&mut s.smsc, &b.customer, 1);
    s.smsc.settle(Duration::from_millis(800));
    let n = s
        .smsc
        .seen
        .iter()
        .filter(|e| e["event"] == "submit")
        .count();
    assert_eq!(n, 1, "{:?}", s.smsc.seen);
}

#[test]
fn throttling_is_retried_and_an_smsc_restart_loses_nothing() {
    let mut s = setup();
    let b = &s.b;
    s.smsc.send(j!({"cmd": "throttle", "n": 2}));
    s.smsc.deliver("t", &b.courier, &b.x, "slow down", j!({}));
    let out = submits_to(&mut s.smsc, &b.customer, 1);
    assert_eq!(out[0]["text"], "slow down");
    assert_eq!(
        s.smsc
            .seen
            .iter()
            .filter(|e| e["event"] == "throttled")
            .count(),
        2
    );
    let list = messages_until(
        &s.relay,
        &s.key,
        &format!("binding_id={}", b.binding_id),
        |l| l.first().is_some_and(|m| m["status"] == "submitted"),
    );
    assert_eq!(list[0]["attempts"], 3);

    // The SMSC goes away; texts keep coming in (HTTP gateway) and are queued.
    let port = s.smsc.port;
    s.smsc.kill();
    for i in 0..5 {
        let (st, body) = text_in(
            &s.relay,
            &b.courier,
            &b.x,
            &format!("while down {i}"),
            &format!("w{i}"),
        );
        assert_eq!(st, 200, "{body}");
        assert_eq!(json(&body)["status"], "queued");
    }
    std::thread::sleep(Duration::from_millis(500));
    // Back on the same port: the relay re-binds and delivers each text once.
    let mut smsc = Smsc::start(port);
    smsc.wait(
        |e| e["event"] == "bound" && e["sessions"] == 2,
        Duration::from_secs(40),
    );
    let out = submits_to(&mut smsc, &b.customer, 5);
    smsc.settle(Duration::from_millis(800));
    let mut texts: Vec<String> = smsc
        .seen
        .iter()
        .filter(|e| e["event"] == "submit")
        .map(|e| e["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(texts.len(), 5, "{out:?}");
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), 5);
    drop(s.env);
}
