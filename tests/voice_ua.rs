//! Voice relay edge cases driven by a tiny raw-UDP test UA against a real
//! `maskline serve`: trust (ACL), malformed SIP, RFC 3261 answers, limits, store
//! outage and drain. Fast, single-message exchanges; SIPp covers whole calls.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod voice_support;

use std::time::Duration;

use voice_support::*;

#[test]
fn untrusted_sources_are_dropped_or_refused_and_counted() {
    // Only 127.0.0.2 is a trunk source.
    let r = VoiceRelay::start(
        Opts {
            sources: "127.0.0.2/32",
            ..Opts::default()
        },
        None,
    );
    let (_, x) = r.bind("demo", "SF-U1", COURIER, CUSTOMER, 3600);
    let stranger = RawUa::bind("127.0.0.4");
    stranger.send(r.sip_udp, &stranger.invite(&x, COURIER, ""));
    assert!(
        stranger.final_response().is_none(),
        "an untrusted source must get no answer at all (default drop)"
    );
    assert!(r.metrics().contains("maskline_sip_untrusted_total"));

    let r = VoiceRelay::start(
        Opts {
            sources: "127.0.0.2/32",
            unknown_source: "reject",
            ..Opts::default()
        },
        None,
    );
    stranger.send(r.sip_udp, &stranger.invite(&x, COURIER, ""));
    let resp = stranger.final_response().expect("a 403");
    assert_eq!(status_of(&resp), 403, "{resp}");
}

#[test]
fn malformed_and_rfc3261_cases_get_their_answers() {
    let r = VoiceRelay::start(Opts::default(), None);
    let (_, x) = r.bind("demo", "SF-U2", COURIER, CUSTOMER, 3600);
    let ua = RawUa::bind(CALLER_IP);

    // A broken CSeq: 400 naming it, never a crash.
    let bad = ua
        .invite(&x, COURIER, "")
        .replace("CSeq: 1 INVITE", "CSeq: x INVITE");
    ua.send(r.sip_udp, &bad);
    let resp = ua
        .final_response()
        .expect("an answer to a malformed request");
    assert_eq!(status_of(&resp), 400, "{resp}");

    // Garbage: no answer possible, and the relay keeps serving.
    ua.send(r.sip_udp, "\u{1}\u{2}garbage\r\n\r\n");
    let resp_opt = ua.final_response();
    assert!(resp_opt.is_none_or(|r| status_of(&r) == 400));

    // Max-Forwards 0 → 483.
    let mf0 = ua
        .invite(&x, COURIER, "")
        .replace("Max-Forwards: 70", "Max-Forwards: 0");
    ua.send(r.sip_udp, &mf0);
    assert_eq!(status_of(&ua.final_response().unwrap()), 483);

    // An extension we do not support in Require → 420 with Unsupported.
    ua.send(r.sip_udp, &ua.invite(&x, COURIER, "Require: 100rel\r\n"));
    let resp = ua.final_response().unwrap();
    assert_eq!(status_of(&resp), 420, "{resp}");
    assert!(resp.contains("Unsupported: 100rel"), "{resp}");

    // A body that is not SDP → 415.
    let txt = ua
        .invite(&x, COURIER, "")
        .replace("Content-Type: application/sdp", "Content-Type: text/plain");
    ua.send(r.sip_udp, &txt);
    assert_eq!(status_of(&ua.final_response().unwrap()), 415);

    // An unsupported SIP version → 505.
    let v3 = ua
        .invite(&x, COURIER, "")
        .replacen("SIP/2.0\r\n", "SIP/3.0\r\n", 1);
    ua.send(r.sip_udp, &v3);
    assert_eq!(status_of(&ua.final_response().unwrap()), 505);

    // A number in no pool → 404; OPTIONS keep-alive → 200.
    ua.send(r.sip_udp, &ua.invite("+8619999999999", COURIER, ""));
    assert_eq!(status_of(&ua.final_response().unwrap()), 404);
    let opts = ua
        .invite(&x, COURIER, "")
        .replacen("INVITE sip:", "OPTIONS sip:", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 OPTIONS");
    ua.send(r.sip_udp, &opts);
    let resp = ua.final_response().unwrap();
    assert_eq!(status_of(&resp), 200, "{resp}");
    assert!(resp.contains("Allow: INVITE"), "{resp}");

    // A request with 34 Via values (RFC 4475 §3.1.1.7 style) is still served.
    let vias: String = (0..33)
        .map(|i| format!("Via: SIP/2.0/UDP 192.0.2.{i}:5060;branch=z9hG4bKv{i}\r\n"))
        .collect();
    let many = ua.invite("+8619999999999", COURIER, "");
    let cut = many.find("From:").unwrap();
    let many = format!("{}{}{}", &many[..cut], vias, &many[cut..]);
    ua.send(r.sip_udp, &many);
    assert_eq!(status_of(&ua.final_response().unwrap()), 404);
}

#[test]
fn a_caller_over_the_call_rate_gets_486() {
    let r = VoiceRelay::start(
        Opts {
            calls_per_min: 2,
            ..Opts::default()
        },
        None,
    );
    let (_, x) = r.bind("demo", "SF-U3", COURIER, CUSTOMER, 3600);
    let ua = RawUa::bind(CALLER_IP);
    // Nobody answers at the gateway: the first two calls ring out (no final answer
    // within our read timeout); the third is refused at once.
    let mut statuses = Vec::new();
    for _ in 0..3 {
        ua.send(r.sip_udp, &ua.invite(&x, COURIER, ""));
        statuses.push(ua.final_response().map(|r| status_of(&r)));
    }
    assert_eq!(statuses[2], Some(486), "{statuses:?}");
    assert_ne!(statuses[0], Some(486));
    // Another caller to the same number is not affected.
    ua.send(r.sip_udp, &ua.invite(&x, CUSTOMER, ""));
    assert_ne!(ua.final_response().map(|r| status_of(&r)), Some(486));
}

#[test]
fn redis_down_answers_503_with_retry_after_then_recovers() {
    let mut redis = common::OwnRedis::start();
    let r = VoiceRelay::on_redis(&redis.url(), &[("MASKLINE_STORE_REDIS_TIMEOUT_MS", "300")]);
    let (_, x) = r.bind("sf", "SF-U4", COURIER, CUSTOMER, 3600);
    let ua = RawUa::bind(CALLER_IP);
    // Learn X's pool while Redis is up (a unbound caller: 480).
    ua.send(r.sip_udp, &ua.invite(&x, "+8613700137000", ""));
    assert_eq!(status_of(&ua.final_response().unwrap()), 480);

    redis.stop();
    let t0 = std::time::Instant::now();
    ua.send(r.sip_udp, &ua.invite(&x, COURIER, ""));
    let resp = ua.final_response().expect("an answer while Redis is down");
    assert_eq!(status_of(&resp), 503, "{resp}");
    assert!(resp.contains("Retry-After:"), "{resp}");
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "answered within the store timeout"
    );

    redis.spawn();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        ua.send(r.sip_udp, &ua.invite(&x, "+8613700137000", ""));
        if ua.final_response().map(|r| status_of(&r)) == Some(480) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no recovery after Redis came back"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn shutdown_refuses_new_calls_and_ends_live_ones_after_the_drain() {
    // drain_timeout_s = 2 in the test config.
    let r = VoiceRelay::start(Opts::default(), None);
    let (_, x) = r.bind("demo", "SF-U5", COURIER, CUSTOMER, 3600);
    let mut uas = Sipp::uas(&scenario("uas.xml", &[]), r.gateway_port, 1, false);
    let _uac = Sipp::uac(
        &scenario(
            "uac.xml",
            &[("CALLER", COURIER), ("CALLED", &x), ("HOLD_MS", "20000")],
        ),
        r.sip_udp,
        1,
        1,
        false,
    );
    // Wait until the call is answered.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !r.metrics().contains("maskline_live_calls 1") {
        assert!(
            std::time::Instant::now() < deadline,
            "the call was not set up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let m = r.metrics();
    assert!(
        m.contains("maskline_sip_requests_total{method=\"INVITE\"} 1"),
        "requests counted by method: {m}"
    );
    let pid = r.relay.child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    std::thread::sleep(Duration::from_millis(300));
    // Several new calls (random Call-IDs, so every engine thread owns some): all
    // refused while the live call drains.
    let ua = RawUa::bind(CALLER_IP);
    for _ in 0..6 {
        ua.send(r.sip_udp, &ua.invite(&x, COURIER, ""));
        let resp = ua.final_response().expect("503 while draining");
        assert_eq!(status_of(&resp), 503, "{resp}");
    }
    // The live call is ended by the relay after the drain timeout: the callee gets BYE.
    uas.expect_success(15);
    let bye = uas
        .received()
        .into_iter()
        .find(|m| m.starts_with("BYE "))
        .unwrap();
    assert!(bye.contains("shutdown"), "{bye}");
    let status = r.relay.terminate();
    assert!(status.success(), "{status}");
}

#[path = "common/mod.rs"]
mod common;

/// The caller is a raw UA with its own RTP socket; the callee's gateway is SIPp
/// with `-rtp_echo`. Voice flows caller → relay → callee → (echo) → relay → caller,
/// and every RTP packet the caller gets comes from the relay's own address.
#[test]
fn media_flows_both_ways_and_only_the_relay_is_ever_seen() {
    let r = VoiceRelay::start(Opts::default(), None);
    let (_, x) = r.bind("demo", "SF-M1", COURIER, CUSTOMER, 3600);
    let echo_port = free_port(CALLEE_IP);
    let _uas = Sipp::spawn(
        "uas",
        &scenario("uas.xml", &[]),
        &[
            "-i".into(),
            CALLEE_IP.into(),
            "-p".into(),
            r.gateway_port.to_string(),
            "-m".into(),
            "1".into(),
            "-rtp_echo".into(),
            "-mp".into(),
            echo_port.to_string(),
        ],
    );
    std::thread::sleep(Duration::from_millis(300));
    let ua = RawUa::bind(CALLER_IP);
    let rtp = std::net::UdpSocket::bind((CALLER_IP, 0)).unwrap();
    rtp.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let rtp_port = rtp.local_addr().unwrap().port();
    let invite = ua
        .invite(&x, COURIER, "")
        .replace("m=audio 40000", &format!("m=audio {rtp_port}"));
    ua.send(r.sip_udp, &invite);
    let ok = ua.final_response().expect("200 OK");
    assert_eq!(status_of(&ok), 200, "{ok}");
    assert!(
        !ok.contains(CALLEE_IP),
        "the callee's address leaked in SIP: {ok}"
    );
    // ACK the 2xx (to the relay's Contact, with its To tag).
    let to = ok.lines().find(|l| l.starts_with("To:")).unwrap();
    let ack = invite
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("Content-") && !l.starts_with("To:"))
        .map(|l| {
            if l.starts_with("INVITE ") {
                l.replacen("INVITE", "ACK", 1)
            } else if l.starts_with("CSeq:") {
                "CSeq: 1 ACK".to_owned()
            } else {
                l.to_owned()
            }
        })
        .chain([to.to_owned(), "Content-Length: 0".to_owned()])
        .collect::<Vec<_>>()
        .join("\r\n")
        + "\r\n\r\n";
    ua.send(r.sip_udp, &ack);

    // Where the relay wants our media: the c= and m= of its answer.
    let sdp = ok.split("\r\n\r\n").nth(1).unwrap();
    let c = sdp
        .lines()
        .find_map(|l| l.strip_prefix("c=IN IP4 "))
        .unwrap()
        .trim();
    let m_port: u16 = sdp
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(c, "127.0.0.1", "{sdp}");
    let relay_media: std::net::SocketAddr = format!("{c}:{m_port}").parse().unwrap();

    // 50 packets of G.711 (20 ms each), SSRC 0x11223344.
    let mut got = 0;
    for seq in 0u16..50 {
        let mut pkt = vec![0x80, 0x00];
        pkt.extend_from_slice(&seq.to_be_bytes());
        pkt.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        pkt.extend_from_slice(&0x1122_3344u32.to_be_bytes());
        pkt.extend(std::iter::repeat_n(0xd5u8, 160));
        rtp.send_to(&pkt, relay_media).unwrap();
        let mut buf = [0u8; 2048];
        rtp.set_nonblocking(true).unwrap();
        while let Ok((n, from)) = rtp.recv_from(&mut buf) {
            assert_eq!(from, relay_media, "media from someone other than the relay");
            assert_eq!(n, 172);
            assert_eq!(
                &buf[8..12],
                &0x1122_3344u32.to_be_bytes(),
                "SSRC passed through"
            );
            got += 1;
        }
        rtp.set_nonblocking(false).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut buf = [0u8; 2048];
    while let Ok((_, from)) = rtp.recv_from(&mut buf) {
        assert_eq!(from, relay_media);
        got += 1;
    }
    assert!(
        got >= 45,
        "only {got} of 50 packets came back through the relay"
    );
}

/// A trunk that reaches us over TLS (rustls) is served like one over UDP/TCP.
#[test]
fn sip_over_tls_is_served() {
    use std::io::{Read, Write};
    let r = VoiceRelay::start(
        Opts {
            tls: true,
            ..Opts::default()
        },
        None,
    );
    let (tls_addr, der) = r.sip_tls.clone().unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(der))
        .unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let cc = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(cc), name).unwrap();
    let tcp = std::net::TcpStream::connect(tls_addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let local = tcp.local_addr().unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let options = format!(
        "OPTIONS sip:+8617000000001@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS {local};branch=z9hG4bKtls1\r\n\
         From: <sip:+8613800138000@127.0.0.1>;tag=a1\r\nTo: <sip:+8617000000001@127.0.0.1>\r\n\
         Call-ID: tls-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    tls.write_all(options.as_bytes()).unwrap();
    let mut buf = vec![0u8; 4096];
    let mut got = String::new();
    while !got.contains("\r\n\r\n") {
        let n = tls.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed: {got}");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(got.starts_with("SIP/2.0 200 OK"), "{got}");
    assert!(got.contains("Call-ID: tls-1"), "{got}");
}

/// A trunk whose gateway takes our outbound legs over TLS: the relay connects,
/// checks the gateway's certificate against the trunk's CA file and name, sends
/// the B-leg INVITE with TLS Via and Contact, and relays the gateway's answer to
/// the caller.
#[test]
fn outbound_legs_reach_a_tls_gateway() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let gw = rcgen::generate_simple_self_signed(vec!["gw.carrier.test".to_string()]).unwrap();
    let ca = dir.path().join("gw-ca.pem");
    std::fs::write(&ca, gw.cert.pem()).unwrap();
    let r = VoiceRelay::start(
        Opts {
            tls: true,
            transport: "tls",
            extra_config: format!(
                "tls_name = \"gw.carrier.test\"\ntls_ca = \"{}\"\n",
                ca.display()
            ),
            ..Opts::default()
        },
        None,
    );
    let (_, x) = r.bind("demo", "SF-TLS1", COURIER, CUSTOMER, 3600);

    // The gateway: a TLS server with the certificate the trunk trusts.
    let listener = std::net::TcpListener::bind((CALLEE_IP, r.gateway_port)).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let key = rustls::pki_types::PrivateKeyDer::try_from(gw.signing_key.serialize_der()).unwrap();
    let sc = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![gw.cert.der().clone()], key)
        .unwrap();
    let gateway = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let conn = rustls::ServerConnection::new(std::sync::Arc::new(sc)).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let mut buf = vec![0u8; 8192];
        let mut got = String::new();
        while !got.contains("\r\n\r\n") {
            let n = tls.read(&mut buf).unwrap();
            assert!(n > 0, "connection closed: {got}");
            got.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        let copy: String = got
            .lines()
            .filter(|l| {
                ["Via:", "From:", "To:", "Call-ID:", "CSeq:"]
                    .iter()
                    .any(|h| l.starts_with(h))
            })
            .map(|l| format!("{l}\r\n"))
            .collect();
        let busy = format!("SIP/2.0 486 Busy Here\r\n{copy}Content-Length: 0\r\n\r\n");
        tls.write_all(busy.as_bytes()).unwrap();
        // The relay's ACK for the 486 comes on the same connection.
        let mut ack = String::new();
        while !ack.contains("\r\n\r\n") {
            match tls.read(&mut buf) {
                Ok(n) if n > 0 => ack.push_str(&String::from_utf8_lossy(&buf[..n])),
                _ => break,
            }
        }
        (got, ack)
    });

    let ua = RawUa::bind(CALLER_IP);
    ua.send(r.sip_udp, &ua.invite(&x, COURIER, ""));
    let answer = ua.final_response().expect("a final answer");
    assert_eq!(status_of(&answer), 486, "{answer}");
    let (invite, ack) = gateway.join().unwrap();
    assert!(invite.starts_with("INVITE sip:"), "{invite}");
    assert!(invite.contains("Via: SIP/2.0/TLS"), "{invite}");
    assert!(invite.contains(";transport=tls>"), "{invite}");
    assert!(
        invite.contains(&x),
        "X is the caller the gateway sees: {invite}"
    );
    assert!(!invite.contains(COURIER), "{invite}");
    assert!(ack.starts_with("ACK sip:"), "{ack}");
}
