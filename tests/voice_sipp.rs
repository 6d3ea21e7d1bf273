//! Voice relay end to end with real SIPp on both sides: the carrier's calling side
//! (UAC on 127.0.0.2) and the callee's gateway (UAS on 127.0.0.3) around a real
//! `maskline serve` (127.0.0.1). Scenarios are in `tests/sipp/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod voice_support;

use voice_support::*;

const X_LEAKS_FROM_CALLER: &[&str] = &[
    COURIER,
    "8613800138000",
    CALLER_IP,
    "caller-secret",
    "CallerTag",
    "CourierPhoneSecretUA",
    "X-Courier-Secret",
    "Courier Secret",
];
const X_LEAKS_FROM_CALLEE: &[&str] = &[
    CUSTOMER,
    "8613900139000",
    CALLEE_IP,
    "callee-secret",
    "CalleeTag",
    "CustomerPhoneSecretUA",
];

/// Runs `calls` calls of the caller scenario `uac` (at `rate`/s) against the callee
/// scenario `uas` through the relay (UDP, or TCP on both sides); both SIPp
/// instances must pass every call within `secs`.
fn call(
    r: &VoiceRelay,
    uas: &str,
    uac: &str,
    calls: u32,
    rate: u32,
    tcp: bool,
    secs: u64,
) -> (Sipp, Sipp) {
    let mut callee = Sipp::uas(uas, r.gateway_port, calls, tcp);
    let relay = if tcp { r.sip_tcp } else { r.sip_udp };
    let mut caller = Sipp::uac(uac, relay, calls, rate, tcp);
    caller.expect_success(secs);
    callee.expect_success(secs);
    (caller, callee)
}

fn vars<'a>(caller: &'a str, called: &'a str, hold: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![("CALLER", caller), ("CALLED", called), ("HOLD_MS", hold)]
}

#[test]
fn courier_calls_customer_each_sees_only_the_virtual_number() {
    let r = VoiceRelay::start(Opts::default(), None);
    let (id, x) = r.bind("demo", "SF-A1", COURIER, CUSTOMER, 3600);
    let (uac, uas) = call(
        &r,
        &scenario("uas.xml", &[]),
        &scenario("uac.xml", &vars(COURIER, &x, "300")),
        1,
        1,
        false,
        30,
    );

    // The callee saw an INVITE for the customer's number from X, and nothing of the caller.
    let got = uas.received();
    let invite = got.iter().find(|m| m.starts_with("INVITE ")).unwrap();
    assert!(
        invite.starts_with(&format!("INVITE sip:{CUSTOMER}@")),
        "{invite}"
    );
    assert!(invite.contains(&format!("From: <sip:{x}@")), "{invite}");
    assert!(
        invite.contains(&format!("P-Asserted-Identity: <sip:{x}@")),
        "{invite}"
    );
    assert!(invite.contains("c=IN IP4 127.0.0.1"), "{invite}");
    assert_absent("callee", &got, X_LEAKS_FROM_CALLER);
    // The caller saw X answer, and nothing of the callee.
    assert_absent("caller", &uac.received(), X_LEAKS_FROM_CALLEE);

    let calls = r.wait_calls(&format!("?binding_id={id}"), 1);
    let c = &calls[0];
    assert_eq!(c["shipment_id"], "SF-A1");
    assert_eq!(c["number"], x.as_str());
    assert_eq!(c["direction"], "courier_to_customer");
    assert_eq!(c["end_reason"], "completed");
    assert_eq!(c["hangup_by"], "caller");
    assert_eq!(c["sip_status"], 200);
    assert_eq!(c["caller"], "+86 138****8000");
    assert_eq!(c["callee"], "+86 139****9000");
    assert!(c["answer_at"].is_string());
    assert!(c["duration_ms"].as_u64().unwrap() >= 200, "{c}");
}

#[test]
fn customer_calls_back_and_courier_hangs_up() {
    let r = VoiceRelay::start(Opts::default(), None);
    let (_, x) = r.bind("demo", "SF-B1", COURIER, CUSTOMER, 3600);
    let (_uac, uas) = call(
        &r,
        &scenario("uas_bye.xml", &[("HOLD_MS", "300")]),
        &scenario("uac_wait_bye.xml", &vars(CUSTOMER, &x, "0")),
        1,
        1,
        false,
        30,
    );
    let invite = uas
        .received()
        .into_iter()
        .find(|m| m.starts_with("INVITE "))
        .unwrap();
    // The customer calling back reaches the courier.
    assert!(
        invite.starts_with(&format!("INVITE sip:{COURIER}@")),
        "{invite}"
    );
    let c = &r.wait_calls("?shipment_id=SF-B1", 1)[0];
    assert_eq!(c["direction"], "customer_to_courier");
    assert_eq!(c["hangup_by"], "callee");
    assert_eq!(c["end_reason"], "completed");
}

#[test]
fn caller_cancels_while_ringing_and_the_callee_gets_cancel() {
    let r = VoiceRelay::start(Opts::default(), None);
    let (_, x) = r.bind("demo", "SF-C1", COURIER, CUSTOMER, 3600);
    let (_uac, uas) = call(
        &r,
        &scenario("uas_ring.xml", &[]),
        &scenario("uac_cancel.xml", &vars(COURIER, &x, "300")),
        1,
        1,
        false,
        30,
    );
    assert!(uas.received().iter().any(|m| m.starts_with("CANCEL ")));
    let c = &r.wait_calls("?shipment_id=SF-C1", 1)[0];
    assert_eq!(c["end_reason"], "cancelled");
    assert_eq!(c["sip_status"], 487);
    assert_eq!(c["hangup_by"], "caller");
}

#[test]
fn busy_callee_is_relayed_as_486() {
    let r = VoiceRelay::start(Opts::default(), None);
    let (_, x) = r.bind("demo", "SF-D1", COURIER, CUSTOMER, 3600);
    let mut v = vars(COURIER, &x, "0");
    v.push(("STATUS", "486"));
    let (_uac, _uas) = call(
        &r,
        &scenario("uas_busy.xml", &[]),
        &scenario("uac_reject.xml", &v),
        1,
        1,
        false,
        30,
    );
    let c = &r.wait_calls("?shipment_id=SF-D1", 1)[0];
    assert_eq!(c["end_reason"], "busy");
    assert_eq!(c["sip_status"], 486);
}

#[test]
fn no_answer_times_out_with_480_and_cancel_to_the_callee() {
    let r = VoiceRelay::start(
        Opts {
            no_answer_timeout_s: 1,
            ..Opts::default()
        },
        None,
    );
    let (_, x) = r.bind("demo", "SF-E1", COURIER, CUSTOMER, 3600);
    let mut v = vars(COURIER, &x, "0");
    v.push(("STATUS", "480"));
    let (_uac, _uas) = call(
        &r,
        &scenario("uas_ring.xml", &[]),
        &scenario("uac_reject.xml", &v),
        1,
        1,
        false,
        30,
    );
    let c = &r.wait_calls("?shipment_id=SF-E1", 1)[0];
    assert_eq!(c["end_reason"], "no_answer");
    assert_eq!(c["sip_status"], 480);
    assert_eq!(c["hangup_by"], "relay");
}

#[test]
fn unbound_and_expired_callers_are_rejected_without_reaching_anyone() {
    let r = VoiceRelay::start(Opts::default(), None);
    let (id, x) = r.bind("demo", "SF-F1", COURIER, CUSTOMER, 3600);
    // Nobody listens at the gateway: a call that leaked through would time out, not 480.
    let mut v = vars("+8613700137000", &x, "0");
    v.push(("STATUS", "480"));
    let mut stranger = Sipp::uac(&scenario("uac_reject.xml", &v), r.sip_udp, 1, 1, false);
    stranger.expect_success(30);
    let resp = stranger
        .received()
        .into_iter()
        .find(|m| m.starts_with("SIP/2.0 480"))
        .unwrap();
    assert!(resp.contains("Reason: SIP;cause=480"), "{resp}");

    // The binding ends (as an expired one does): the courier is refused too.
    let (status, _) = r
        .relay
        .http("DELETE", &format!("/v1/bindings/{id}"), &r.key, None);
    assert_eq!(status, 204);
    let mut v = vars(COURIER, &x, "0");
    v.push(("STATUS", "480"));
    let mut courier = Sipp::uac(&scenario("uac_reject.xml", &v), r.sip_udp, 1, 1, false);
    courier.expect_success(30);
    let calls = r.wait_calls(&format!("?number=%2B{}", &x[1..]), 2);
    assert!(
        calls.iter().all(|c| c["end_reason"] == "no_binding"),
        "{calls:?}"
    );
}

#[test]
fn expired_binding_is_rejected() {
    let r = VoiceRelay::start(Opts::default(), None);
    let (_, x) = r.bind("demo", "SF-G1", COURIER, CUSTOMER, 1);
    std::thread::sleep(std::time::Duration::from_millis(1300));
    let mut v = vars(COURIER, &x, "0");
    v.push(("STATUS", "480"));
    let mut uac = Sipp::uac(&scenario("uac_reject.xml", &v), r.sip_udp, 1, 1, false);
    uac.expect_success(30);
}

#[test]
fn hold_and_resume_reinvites_pass_through_with_rewritten_sdp() {
    let r = VoiceRelay::start(Opts::default(), None);
    let (_, x) = r.bind("demo", "SF-H1", COURIER, CUSTOMER, 3600);
    let (uac, uas) = call(
        &r,
        &scenario("uas.xml", &[]),
        &scenario("uac_reinvite.xml", &vars(COURIER, &x, "0")),
        1,
        1,
        false,
        30,
    );
    let got = uas.received();
    let reinvites: Vec<&String> = got
        .iter()
        .filter(|m| m.starts_with("INVITE ") && !m.contains("CSeq: 1 INVITE"))
        .collect();
    assert_eq!(reinvites.len(), 2, "{got:?}");
    assert!(reinvites[0].contains("a=sendonly"), "{}", reinvites[0]);
    assert!(reinvites[1].contains("a=sendrecv"), "{}", reinvites[1]);
    assert_absent("callee", &got, X_LEAKS_FROM_CALLER);
    assert_absent("caller", &uac.received(), X_LEAKS_FROM_CALLEE);
    // The callee's answer to hold (recvonly) reached the caller.
    assert!(
        uac.logs().contains("reinvite 2 answer a=recvonly"),
        "{}",
        uac.logs()
    );
}

#[test]
fn call_over_tcp() {
    let r = VoiceRelay::start(
        Opts {
            transport: "tcp",
            ..Opts::default()
        },
        None,
    );
    let (_, x) = r.bind("demo", "SF-T1", COURIER, CUSTOMER, 3600);
    let (_uac, uas) = call(
        &r,
        &scenario("uas.xml", &[]),
        &scenario("uac.xml", &vars(COURIER, &x, "300")),
        1,
        1,
        true,
        30,
    );
    assert_absent("callee", &uas.received(), X_LEAKS_FROM_CALLER);
    let c = &r.wait_calls("?shipment_id=SF-T1", 1)[0];
    assert_eq!(c["end_reason"], "completed");
}

#[test]
fn twenty_concurrent_calls() {
    // Four engine threads, spreading new calls only from the default load (35 %
    // of a core): 20 calls are far below it, so engine 0 keeps every one and no
    // message is handed from one engine to another (the cheapest path).
    let r = VoiceRelay::start(
        Opts {
            extra_env: vec![
                ("MASKLINE_SIP_ENGINES", "4".into()),
                ("MASKLINE_SIP_SPREAD_FROM_PCT", "35".into()),
            ],
            ..Opts::default()
        },
        None,
    );
    let (_, x) = r.bind("demo", "SF-K1", COURIER, CUSTOMER, 3600);
    let (_uac, _uas) = call(
        &r,
        &scenario("uas.xml", &[]),
        &scenario("uac.xml", &vars(COURIER, &x, "2000")),
        20,
        50,
        false,
        60,
    );
    let calls = r.wait_calls("?shipment_id=SF-K1", 20);
    assert!(calls.iter().all(|c| c["end_reason"] == "completed"));
    // All 20 overlapped: each lasted about 2 s and they were placed within ~0.4 s.
    assert!(calls
        .iter()
        .all(|c| c["duration_ms"].as_u64().unwrap() >= 1500));
    let metrics = r.metrics();
    let handoffs: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("maskline_sip_shard_handoffs_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    assert_eq!(handoffs, 0.0, "a lightly loaded relay handed messages over");
}

/// `sip.engine_port_base`: each engine but the first has its own UDP socket,
/// named in the Via and Contact of the B legs it places. The callee's gateway
/// answers there, so those calls' responses never pass through engine 0; the
/// calls complete as with one socket.
#[test]
fn engines_with_their_own_sockets_carry_their_calls() {
    let r = VoiceRelay::start(
        Opts {
            extra_env: vec![
                ("MASKLINE_SIP_ENGINES", "4".into()),
                ("MASKLINE_SIP_ENGINE_PORT_BASE", "0".into()),
                // Every new call spread, so that the other engines place some.
                ("MASKLINE_SIP_SPREAD_FROM_PCT", "0".into()),
            ],
            ..Opts::default()
        },
        None,
    );
    let engine_ports: Vec<u16> = r
        .relay
        .banner
        .iter()
        .filter_map(|l| l.split_once(" listening on udp:"))
        .filter(|(head, _)| head.starts_with("sip engine "))
        .map(|(_, a)| a.parse::<std::net::SocketAddr>().unwrap().port())
        .collect();
    assert_eq!(engine_ports.len(), 3, "{:?}", r.relay.banner);
    let (_, x) = r.bind("demo", "SF-K2", COURIER, CUSTOMER, 3600);
    let (_uac, uas) = call(
        &r,
        &scenario("uas.xml", &[]),
        &scenario("uac.xml", &vars(COURIER, &x, "1000")),
        20,
        50,
        false,
        60,
    );
    let calls = r.wait_calls("?shipment_id=SF-K2", 20);
    assert!(calls.iter().all(|c| c["end_reason"] == "completed"));
    // Every B-leg INVITE names the socket of the engine that placed it.
    let mut seen = std::collections::BTreeSet::new();
    for inv in uas.received().iter().filter(|m| m.starts_with("INVITE ")) {
        let via = inv
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("via:"))
            .unwrap();
        let port: u16 = via
            .split_whitespace()
            .nth(2)
            .and_then(|hp| hp.split(';').next())
            .and_then(|hp| hp.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{via}"));
        assert!(
            port == r.sip_udp.port() || engine_ports.contains(&port),
            "{via}"
        );
        let contact = inv
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("contact:"))
            .unwrap();
        assert!(contact.contains(&format!(":{port}")), "{contact} vs {via}");
        seen.insert(port);
    }
    assert!(
        seen.iter().any(|p| engine_ports.contains(p)),
        "no call was placed from an engine socket: {seen:?}"
    );
    // SIPp's caller sends every request to the listen socket (it ignores our
    // Contact), so engine 0 hands the other engines' INVITEs, ACKs and BYEs over,
    // and counts them; the B legs' responses come straight to the engines.
    let metrics = r.metrics();
    let handoffs: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("maskline_sip_shard_handoffs_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no hand-off counter in {metrics}"));
    assert!(
        (1.0..=60.0).contains(&handoffs),
        "at most the caller's 3 requests for each of 20 calls may be handed over \
         (with one socket the callee's responses would add ~3 a call): {handoffs}"
    );
}

#[test]
fn redis_backed_call_and_record() {
    let redis = common::OwnRedis::start();
    let r = VoiceRelay::on_redis(&redis.url(), &[]);
    let (_, x) = r.bind("sf", "SF-R1", COURIER, CUSTOMER, 3600);
    let (_uac, _uas) = call(
        &r,
        &scenario("uas.xml", &[]),
        &scenario("uac.xml", &vars(COURIER, &x, "200")),
        1,
        1,
        false,
        30,
    );
    let c = &r.wait_calls("?shipment_id=SF-R1", 1)[0];
    assert_eq!(c["end_reason"], "completed");
    assert_eq!(c["pool"], "sf");
}

#[path = "common/mod.rs"]
mod common;

#[test]
fn late_offer_the_callers_answer_reaches_the_callee_in_our_ack() {
    let r = VoiceRelay::start(Opts::default(), None);
    let (_, x) = r.bind("demo", "SF-L1", COURIER, CUSTOMER, 3600);
    let (_uac, uas) = call(
        &r,
        &scenario("uas.xml", &[]),
        &scenario("uac_late_offer.xml", &vars(COURIER, &x, "200")),
        1,
        1,
        false,
        30,
    );
    let got = uas.received();
    let invite = got.iter().find(|m| m.starts_with("INVITE ")).unwrap();
    assert!(
        !invite.contains("m=audio"),
        "no offer in the INVITE: {invite}"
    );
    let ack = got.iter().find(|m| m.starts_with("ACK ")).unwrap();
    assert!(
        ack.contains("m=audio") && ack.contains("c=IN IP4 127.0.0.1"),
        "{ack}"
    );
    assert_absent("callee", &got, X_LEAKS_FROM_CALLER);
}

#[test]
fn media_timeout_ends_the_call_with_bye_on_both_legs() {
    let r = VoiceRelay::start(
        Opts {
            extra_env: vec![("MASKLINE_MEDIA_TIMEOUT_S", "1".into())],
            ..Opts::default()
        },
        None,
    );
    let (_, x) = r.bind("demo", "SF-MT", COURIER, CUSTOMER, 3600);
    // Neither SIPp sends RTP: after 1 s of silence the relay hangs up both sides.
    let (_uac, _uas) = call(
        &r,
        &scenario("uas.xml", &[]),
        &scenario("uac_wait_bye.xml", &vars(COURIER, &x, "0")),
        1,
        1,
        false,
        30,
    );
    let c = &r.wait_calls("?shipment_id=SF-MT", 1)[0];
    assert_eq!(c["end_reason"], "media_timeout");
    assert_eq!(c["hangup_by"], "relay");
}

#[test]
fn no_media_ports_left_answers_503_not_a_broken_call() {
    // One port pair per leg, two legs per call: room for exactly one call.
    let r = VoiceRelay::start(
        Opts {
            extra_env: vec![("MASKLINE_MEDIA_PORTS", format!("{0}-{1}", 47000, 47003))],
            ..Opts::default()
        },
        None,
    );
    let (_, x) = r.bind("demo", "SF-PE", COURIER, CUSTOMER, 3600);
    let mut uas = Sipp::uas(&scenario("uas.xml", &[]), r.gateway_port, 1, false);
    let mut first = Sipp::uac(
        &scenario("uac.xml", &vars(COURIER, &x, "3000")),
        r.sip_udp,
        1,
        1,
        false,
    );
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let mut v = vars(COURIER, &x, "0");
    v.push(("STATUS", "503"));
    let mut second = Sipp::uac(&scenario("uac_reject.xml", &v), r.sip_udp, 1, 1, false);
    second.expect_success(30);
    first.expect_success(30);
    uas.expect_success(30);
    let calls = r.wait_calls("?shipment_id=SF-PE", 2);
    assert!(
        calls.iter().any(|c| c["end_reason"] == "ports_exhausted"),
        "{calls:?}"
    );
    assert!(
        calls.iter().any(|c| c["end_reason"] == "completed"),
        "{calls:?}"
    );
}
