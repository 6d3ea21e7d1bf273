//! SMS through the HTTP gateway, end to end: the real `maskline serve` binary, a
//! private real `redis-server`, and a real local HTTP server as the CPaaS provider.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli_support;
mod common;
mod sms_support;

use std::time::Duration;

use cli_support::{json, Relay};
use common::OwnRedis;
use sms_support::*;

#[test]
fn courier_text_reaches_customer_from_x_and_the_reply_comes_back() {
    let redis = OwnRedis::start();
    let provider = Provider::start(0);
    let (env, key) = sms_env(&redis.url(), &provider.url);
    let relay = Relay::start(&refs(&env));
    let b = bind(&relay, &key);

    let (s, body) = text_in(&relay, &b.courier, &b.x, "I'm at your door", "c-1");
    assert_eq!(s, 200, "{body}");
    assert_eq!(json(&body)["status"], "queued");
    let got = provider.wait_for(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["from"], b.x.as_str());
    assert_eq!(got[0]["to"], b.customer.as_str());
    assert_eq!(got[0]["text"], "I'm at your door");

    // The customer replies to X; the courier gets it from X.
    let (s, body) = text_in(&relay, &b.customer, &b.x, "leave it with the guard", "c-2");
    assert_eq!(s, 200, "{body}");
    let got = provider.wait_for(2, Duration::from_secs(10));
    assert_eq!(got[1]["from"], b.x.as_str());
    assert_eq!(got[1]["to"], b.courier.as_str());

    // Records: masked parties, direction, shipment, final status.
    let list = messages_until(&relay, &key, &format!("shipment_id={}", b.shipment), |l| {
        l.len() == 2 && l.iter().all(|m| m["status"] == "submitted")
    });
    assert_eq!(list.len(), 2, "{list:?}");
    let text = serde_json::to_string(&list).unwrap();
    for n in [&b.courier, &b.customer] {
        assert!(!text.contains(&n[1..]), "a party number in clear: {text}");
    }
    let reply = &list[0];
    assert_eq!(reply["direction"], "customer_to_courier");
    assert_eq!(reply["binding_id"], b.binding_id.as_str());
    assert_eq!(reply["number"], b.x.as_str());
    assert_eq!(list[1]["direction"], "courier_to_customer");
    assert!(reply["body_sealed"].is_null());

    // A delivery receipt from the provider marks the text delivered.
    let receipt = r#"{"id":"prov-1","status":"delivered"}"#;
    let (s, body) = post_signed(
        &relay,
        "/v1/sms/receipts",
        "application/json",
        receipt,
        now_s(),
        SECRET,
    );
    assert_eq!(s, 200, "{body}");
    assert_eq!(json(&body)["status"], "recorded");
    let list = messages_until(&relay, &key, &format!("binding_id={}", b.binding_id), |l| {
        l.iter().any(|m| m["status"] == "delivered")
    });
    assert!(list.iter().any(|m| m["status"] == "delivered"), "{list:?}");
    assert!(relay.terminate().success());
}

#[test]
fn numbers_typed_into_a_text_are_masked_and_form_posts_work() {
    let redis = OwnRedis::start();
    let provider = Provider::start(0);
    let (env, key) = sms_env(&redis.url(), &provider.url);
    let relay = Relay::start(&refs(&env));
    let b = bind(&relay, &key);
    let own = b.courier.trim_start_matches("+86").to_string();
    let spaced = format!("{} {} {}", &own[..3], &own[3..7], &own[7..]);
    let text = format!("call me on {own} or {spaced} or {}", b.courier);
    let form = format!(
        "from={}&to={}&text={}&id=m-1",
        b.courier.replace('+', "%2B"),
        b.x.replace('+', "%2B"),
        text.replace('+', "%2B").replace(' ', "+")
    );
    let (s, body) = post_signed(
        &relay,
        "/v1/sms/inbound",
        "application/x-www-form-urlencoded",
        &form,
        now_s(),
        SECRET,
    );
    assert_eq!(s, 200, "{body}");
    let got = provider.wait_for(1, Duration::from_secs(10));
    let out = got[0]["text"].as_str().unwrap().to_string();
    assert!(!out.contains(&own[3..7]), "middle digits leaked: {out}");
    let tail = &own[7..];
    assert_eq!(out.matches(tail).count(), 3, "{out}");
    assert!(out.starts_with("call me on 1"), "{out}");
    let list = messages_until(&relay, &key, &format!("binding_id={}", b.binding_id), |l| {
        l.first().is_some_and(|m| m["status"] == "submitted")
    });
    assert_eq!(list[0]["numbers_masked"], 3);
}

#[test]
fn unbound_sender_gets_the_auto_reply_and_the_record_says_why() {
    let redis = OwnRedis::start();
    let provider = Provider::start(0);
    let (mut env, key) = sms_env(&redis.url(), &provider.url);
    env.push((
        "MASKLINE_SMS_AUTO_REPLY",
        "This number no longer serves your parcel".to_string(),
    ));
    let relay = Relay::start(&refs(&env));
    let b = bind(&relay, &key);
    let stranger = common::random_e164("+86137");
    let (s, body) = text_in(&relay, &stranger, &b.x, "who is this?", "u-1");
    assert_eq!(s, 200, "{body}");
    assert_eq!(json(&body)["status"], "not_forwarded");
    let got = provider.wait_for(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["to"], stranger.as_str());
    assert_eq!(got[0]["from"], b.x.as_str());
    assert_eq!(got[0]["text"], "This number no longer serves your parcel");
    let list = messages_until(
        &relay,
        &key,
        &format!("number={}", b.x.replace('+', "%2B")),
        |l| l.iter().any(|m| m["status"] == "not_forwarded"),
    );
    let nf = list
        .iter()
        .find(|m| m["status"] == "not_forwarded")
        .unwrap();
    assert_eq!(nf["reason"], "no_binding");
    // Nothing reached either party of the binding.
    assert!(provider
        .texts()
        .iter()
        .all(|t| t["to"] != b.courier.as_str() && t["to"] != b.customer.as_str()));
}

#[test]
fn rate_limit_drops_the_excess_with_a_record() {
    let redis = OwnRedis::start();
    let provider = Provider::start(0);
    let (mut env, key) = sms_env(&redis.url(), &provider.url);
    env.push(("MASKLINE_SMS_RATE_PER_SENDER_PER_HOUR", "3".to_string()));
    let relay = Relay::start(&refs(&env));
    let b = bind(&relay, &key);
    let mut statuses = Vec::new();
    for i in 0..5 {
        let (s, body) = text_in(
            &relay,
            &b.courier,
            &b.x,
            &format!("ping {i}"),
            &format!("r-{i}"),
        );
        assert_eq!(s, 200, "{body}");
        statuses.push(json(&body)["status"].as_str().unwrap().to_string());
    }
    assert_eq!(
        statuses,
        ["queued", "queued", "queued", "rate_limited", "rate_limited"]
    );
    // The customer's own limit is separate.
    let (_, body) = text_in(&relay, &b.customer, &b.x, "ok", "r-c");
    assert_eq!(json(&body)["status"], "queued");
    let got = provider.wait_for(4, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(provider.texts().len(), 4, "{got:?}");
    let list = messages_until(&relay, &key, &format!("binding_id={}", b.binding_id), |l| {
        l.iter().filter(|m| m["status"] == "rate_limited").count() == 2
    });
    assert_eq!(
        list.iter()
            .filter(|m| m["status"] == "rate_limited")
            .count(),
        2
    );
}

#[test]
fn bad_or_stale_signatures_are_refused_and_duplicates_relayed_once() {
    let redis = OwnRedis::start();
    let provider = Provider::start(2); // the first two outbound POSTs fail (503)
    let (env, key) = sms_env(&redis.url(), &provider.url);
    let relay = Relay::start(&refs(&env));
    let b = bind(&relay, &key);
    let body =
        serde_json::json!({"from": b.courier, "to": b.x, "text": "hi", "id": "d-1"}).to_string();
    let (s, r) = post_signed(
        &relay,
        "/v1/sms/inbound",
        "application/json",
        &body,
        now_s(),
        "wrong-secret-000000",
    );
    assert_eq!(s, 401, "{r}");
    assert_eq!(json(&r)["error"]["code"], "unauthorized", "{r}");
    let (s, _) = post_signed(
        &relay,
        "/v1/sms/inbound",
        "application/json",
        &body,
        now_s() - 3600,
        SECRET,
    );
    assert_eq!(s, 401);
    // Same provider id twice (a retry after a lost answer): relayed once.
    let (s, r) = post_signed(
        &relay,
        "/v1/sms/inbound",
        "application/json",
        &body,
        now_s(),
        SECRET,
    );
    assert_eq!((s, json(&r)["status"].clone()), (200, "queued".into()));
    let (s, r) = post_signed(
        &relay,
        "/v1/sms/inbound",
        "application/json",
        &body,
        now_s(),
        SECRET,
    );
    assert_eq!((s, json(&r)["status"].clone()), (200, "duplicate".into()));
    // Delivered despite two 5xx answers (retried with back-off), exactly once.
    let got = provider.wait_for(1, Duration::from_secs(15));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(provider.texts().len(), 1, "{got:?}");
    let list = messages_until(&relay, &key, &format!("binding_id={}", b.binding_id), |l| {
        l.first().is_some_and(|m| m["status"] == "submitted")
    });
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["attempts"], 3);
}

#[test]
fn relay_killed_with_texts_queued_delivers_each_once_after_restart() {
    let redis = OwnRedis::start();
    // Provider down at first: texts stay queued.
    let port = common::later_port();
    let url = format!("http://127.0.0.1:{port}/sms");
    let (env, key) = sms_env(&redis.url(), &url);
    let mut relay = Relay::start(&refs(&env));
    let b = bind(&relay, &key);
    for i in 0..20 {
        let (s, body) = text_in(
            &relay,
            &b.courier,
            &b.x,
            &format!("parcel note {i}"),
            &format!("k-{i}"),
        );
        assert_eq!(s, 200, "{body}");
    }
    // kill -9: no drain.
    relay.child.kill().unwrap();
    relay.child.wait().unwrap();
    drop(relay);

    // The provider comes up on that port; a new relay (same consumer name) starts.
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    drop(listener);
    let provider = Provider::start_on(port);
    let relay = Relay::start(&refs(&env));
    // A duplicate of one acknowledged text after the restart is still refused.
    let (_, body) = text_in(&relay, &b.courier, &b.x, "parcel note 0", "k-0");
    assert_eq!(json(&body)["status"], "duplicate");
    let got = provider.wait_for(20, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    let got_now = provider.texts();
    assert_eq!(got_now.len(), 20, "{got:?}");
    let mut texts: Vec<String> = got_now
        .iter()
        .map(|t| t["text"].as_str().unwrap().to_string())
        .collect();
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), 20, "a text was doubled");
    assert!(relay.terminate().success());
}
