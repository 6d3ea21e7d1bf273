//! The IVR of printed numbers driven by real SIPp callers: the caller's side is
//! `tests/sipp/uac_ivr.xml` (hangs up itself) or `uac_ivr_wait_bye.xml` (waits
//! for the relay's BYE), keying digits as RFC 4733 telephone-events (SIPp plays
//! the committed pcaps of `tests/sipp/dtmf/`, made by `generate.py` there) or as
//! SIP INFO `application/dtmf-relay`; the gateway is `uas.xml`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(unused_imports)]
mod voice_support;

use std::path::Path;

use voice_support::*;

const STRANGER: &str = "+8613700137000";
const NEW_COURIER: &str = "+8613800138111";
const DEPOT: &str = "+862112345678";

fn ivr_relay(pool_extra: &str, ivr_extra: &str) -> VoiceRelay {
    VoiceRelay::start(
        Opts {
            extra_config: format!(
                "[sip.ivr]\nfirst_digit_timeout_ms = 1500\ninter_digit_timeout_ms = 1500\n{ivr_extra}\n\
                 [[sip.ivr.pools]]\npool = \"demo\"\n{pool_extra}\n"
            ),
            ..Opts::default()
        },
        None,
    )
}

fn bind_ext(r: &VoiceRelay, shipment: &str, ttl_s: u64) -> (String, String, String) {
    let body = format!(
        r#"{{"pool":"demo","shipment_id":"{shipment}","party_a":"{COURIER}","party_b":"{CUSTOMER}","ttl_s":{ttl_s},"extension":true}}"#
    );
    let (status, body) = r.relay.http("POST", "/v1/bindings", &r.key, Some(&body));
    assert_eq!(status, 201, "{body}");
    let v = json(&body);
    (
        v["id"].as_str().unwrap().to_owned(),
        v["number"].as_str().unwrap().to_owned(),
        v["extension"].as_str().unwrap().to_owned(),
    )
}

/// SIPp actions that play one RFC 4733 pcap per key.
fn rtp_keys(keys: &str) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sipp/dtmf");
    keys.chars()
        .map(|k| {
            let name = match k {
                '#' => "hash".to_owned(),
                '*' => "star".to_owned(),
                d => d.to_string(),
            };
            format!(
                "  <nop><action><exec play_pcap_audio=\"{}\"/></action></nop>\n  <pause milliseconds=\"250\"/>\n",
                dir.join(format!("{name}.pcap")).display()
            )
        })
        .collect()
}

/// SIPp messages that send one SIP INFO (`application/dtmf-relay`) per key.
fn info_keys(keys: &str, first_cseq: u32) -> String {
    keys.chars()
        .enumerate()
        .map(|(i, k)| {
            format!(
                r#"  <send retrans="500">
    <![CDATA[

      INFO [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: "Stranger" <sip:@CALLER@@[local_ip]:[local_port]>;tag=[pid]IvrTag[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: {cseq} INFO
      Max-Forwards: 70
      Content-Type: application/dtmf-relay
      Content-Length: [len]

      Signal={k}
      Duration=160

    ]]>
  </send>
  <recv response="200"/>
"#,
                cseq = first_cseq + i as u32
            )
        })
        .collect()
}

fn pause(ms: u32) -> String {
    format!("  <pause milliseconds=\"{ms}\"/>\n")
}

fn caller(file: &str, x: &str, dtmf: &str, pre_ms: &str) -> String {
    scenario(
        file,
        &[
            ("DTMF", dtmf),
            ("CALLER", STRANGER),
            ("CALLED", x),
            ("PRE_MS", pre_ms),
            ("HOLD_MS", "500"),
        ],
    )
}

fn invites(uas: &Sipp) -> Vec<String> {
    uas.received()
        .into_iter()
        .filter(|m| m.starts_with("INVITE "))
        .collect()
}

fn records(r: &VoiceRelay, x: &str, n: usize) -> Vec<serde_json::Value> {
    r.wait_calls(&format!("?number=%2B{}", &x[1..]), n)
}

fn wrong(ext: &str) -> String {
    ext.chars()
        .map(|c| char::from(b'0' + (c as u8 - b'0' + 1) % 10))
        .collect()
}

#[test]
fn sipp_keys_a_valid_extension_as_rfc4733_and_reaches_the_courier() {
    let r = ivr_relay("", "");
    let (_, x, ext) = bind_ext(&r, "SF-S1", 3600);
    let mut uas = Sipp::uas(&scenario("uas.xml", &[]), r.gateway_port, 1, false);
    let xml = caller("uac_ivr.xml", &x, &rtp_keys(&format!("{ext}#")), "1000");
    let mut uac = Sipp::uac(&xml, r.sip_udp, 1, 1, false);
    uac.expect_success(30);
    uas.expect_success(30);
    let inv = invites(&uas);
    assert!(
        inv[0].starts_with(&format!("INVITE sip:{COURIER}@")),
        "{}",
        inv[0]
    );
    assert!(inv[0].contains(&format!("From: <sip:{x}@")));
    assert_absent(
        "callee",
        &uas.received(),
        &[STRANGER, "8613700137000", CALLER_IP],
    );
    let c = records(&r, &x, 1);
    assert_eq!(
        (c[0]["via"].as_str(), c[0]["ivr"].as_str()),
        (Some("extension"), Some("extension"))
    );
}

#[test]
fn sipp_keys_during_the_prompt_and_is_connected() {
    let r = ivr_relay("", "");
    let (_, x, ext) = bind_ext(&r, "SF-S2", 3600);
    let mut uas = Sipp::uas(&scenario("uas.xml", &[]), r.gateway_port, 1, false);
    let xml = caller("uac_ivr.xml", &x, &rtp_keys(&ext), "0");
    let mut uac = Sipp::uac(&xml, r.sip_udp, 1, 1, false);
    uac.expect_success(30);
    uas.expect_success(30);
    assert!(invites(&uas)[0].starts_with(&format!("INVITE sip:{COURIER}@")));
}

#[test]
fn sipp_keys_a_wrong_then_the_right_extension_over_sip_info() {
    let r = ivr_relay("", "");
    let (_, x, ext) = bind_ext(&r, "SF-S3", 3600);
    let mut uas = Sipp::uas(&scenario("uas.xml", &[]), r.gateway_port, 1, false);
    let dtmf = format!(
        "{}{}{}",
        info_keys(&format!("{}#", wrong(&ext)), 2),
        pause(600),
        info_keys(&format!("{ext}#"), 20)
    );
    let mut uac = Sipp::uac(
        &caller("uac_ivr.xml", &x, &dtmf, "500"),
        r.sip_udp,
        1,
        1,
        false,
    );
    uac.expect_success(30);
    uas.expect_success(30);
    assert!(invites(&uas)[0].starts_with(&format!("INVITE sip:{COURIER}@")));
}

#[test]
fn sipp_keys_three_wrong_extensions_and_the_relay_says_goodbye() {
    let r = ivr_relay("", "");
    let (_, x, ext) = bind_ext(&r, "SF-S4", 3600);
    let w = format!("{}#", wrong(&ext));
    let dtmf = format!(
        "{}{}{}{}{}",
        rtp_keys(&w),
        pause(500),
        rtp_keys(&w),
        pause(500),
        rtp_keys(&w)
    );
    let mut uac = Sipp::uac(
        &caller("uac_ivr_wait_bye.xml", &x, &dtmf, "500"),
        r.sip_udp,
        1,
        1,
        false,
    );
    uac.expect_success(40);
    let c = records(&r, &x, 1);
    assert_eq!(c[0]["ivr"], "wrong_extension");
    assert_eq!(c[0]["hangup_by"], "relay");
}

#[test]
fn sipp_keys_nothing_and_times_out() {
    let r = ivr_relay("", "max_tries = 1");
    let (_, x, _) = bind_ext(&r, "SF-S5", 3600);
    let mut uac = Sipp::uac(
        &caller("uac_ivr_wait_bye.xml", &x, "", "0"),
        r.sip_udp,
        1,
        1,
        false,
    );
    uac.expect_success(40);
    assert_eq!(records(&r, &x, 1)[0]["ivr"], "no_digits");
}

#[test]
fn sipp_keys_the_extension_of_an_expired_binding_and_hears_it_no_longer_serves() {
    let r = ivr_relay("", "");
    let (_, x, ext) = bind_ext(&r, "SF-S6", 1);
    std::thread::sleep(std::time::Duration::from_millis(1300));
    let xml = caller(
        "uac_ivr_wait_bye.xml",
        &x,
        &rtp_keys(&format!("{ext}#")),
        "300",
    );
    let mut uac = Sipp::uac(&xml, r.sip_udp, 1, 1, false);
    uac.expect_success(40);
    let c = records(&r, &x, 1);
    assert_eq!(c[0]["ivr"], "not_serving");
    assert_eq!(c[0]["end_reason"], "not_serving");
}

#[test]
fn sipp_calls_twice_around_a_courier_handover_and_reaches_the_new_courier() {
    let r = ivr_relay("", "");
    let (id, x, ext) = bind_ext(&r, "SF-S7", 3600);
    let mut uas = Sipp::uas(&scenario("uas.xml", &[]), r.gateway_port, 2, false);
    let xml = caller("uac_ivr.xml", &x, &rtp_keys(&ext), "300");
    Sipp::uac(&xml, r.sip_udp, 1, 1, false).expect_success(30);
    let body = format!(r#"{{"party_a":"{NEW_COURIER}"}}"#);
    let (st, resp) = r
        .relay
        .http("PATCH", &format!("/v1/bindings/{id}"), &r.key, Some(&body));
    assert_eq!(st, 200, "{resp}");
    Sipp::uac(&xml, r.sip_udp, 1, 1, false).expect_success(30);
    uas.expect_success(30);
    let inv = invites(&uas);
    assert!(
        inv[0].starts_with(&format!("INVITE sip:{COURIER}@")),
        "{}",
        inv[0]
    );
    assert!(
        inv[1].starts_with(&format!("INVITE sip:{NEW_COURIER}@")),
        "{}",
        inv[1]
    );
}

#[test]
fn sipp_keys_only_hash_and_reaches_the_default_party() {
    let r = ivr_relay(&format!("default_party = \"{DEPOT}\""), "");
    let x = "+8617000000006";
    let mut uas = Sipp::uas(&scenario("uas.xml", &[]), r.gateway_port, 1, false);
    let mut uac = Sipp::uac(
        &caller("uac_ivr.xml", x, &info_keys("#", 2), "300"),
        r.sip_udp,
        1,
        1,
        false,
    );
    uac.expect_success(30);
    uas.expect_success(30);
    let inv = invites(&uas);
    assert!(
        inv[0].starts_with(&format!("INVITE sip:{DEPOT}@")),
        "{}",
        inv[0]
    );
    assert!(inv[0].contains(&format!("From: <sip:{x}@")));
    assert_eq!(records(&r, x, 1)[0]["via"], "default_party");
}
