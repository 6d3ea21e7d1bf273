//! The media relay over real UDP sockets on 127.0.0.1: two sockets play leg A and
//! leg B (and a stranger), exchange RTP/RTCP through a session and check what
//! arrives, from where, and what does not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use maskline::media::{Advertise, Leg, MediaConfig, MediaError, MediaEvent, MediaRelay};
use tokio::net::UdpSocket;
use tokio::time::timeout;

const LOCAL: [u8; 4] = [127, 0, 0, 1];
const WAIT: Duration = Duration::from_secs(2);

/// A relay on its own port range (tests run in parallel).
fn relay(base: u16, pairs: u16, media_timeout: Duration) -> MediaRelay {
    MediaRelay::start(MediaConfig {
        ports: (base, base + pairs * 2 - 1),
        bind_ip: LOCAL.into(),
        public_ip: LOCAL.into(),
        timeout: media_timeout,
        workers: 2,
        ..MediaConfig::default()
    })
    .unwrap()
}

async fn phone() -> UdpSocket {
    UdpSocket::bind(SocketAddr::from((LOCAL, 0))).await.unwrap()
}

fn port_of(s: &UdpSocket) -> u16 {
    s.local_addr().unwrap().port()
}

fn sdp(port: u16, extra: &str) -> Vec<u8> {
    format!(
        "v=0\r\no=user 1 1 IN IP4 127.0.0.1\r\ns=call\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n{extra}"
    )
    .into_bytes()
}

/// The port of the first `m=` line of a rewritten body.
fn m_port(body: &[u8]) -> u16 {
    let text = String::from_utf8(body.to_vec()).unwrap();
    let line = text.lines().find(|l| l.starts_with("m=")).unwrap();
    line.split(' ').nth(1).unwrap().parse().unwrap()
}

fn rtp(pt: u8, seq: u16, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend((0..160).map(|i| (i as u8) ^ (seq as u8)));
    p
}

async fn recv(s: &UdpSocket) -> Option<(Vec<u8>, SocketAddr)> {
    recv_within(s, WAIT).await
}

async fn recv_within(s: &UdpSocket, d: Duration) -> Option<(Vec<u8>, SocketAddr)> {
    let mut buf = [0u8; 2048];
    let (n, from) = timeout(d, s.recv_from(&mut buf)).await.ok()?.ok()?;
    Some((buf[..n].to_vec(), from))
}

fn relay_addr(port: u16) -> SocketAddr {
    SocketAddr::from((LOCAL, port))
}

/// Sends `pkt` from `from` to `to` until `at` receives something (the worker
/// learns a session's SDP asynchronously), returning what arrived.
async fn deliver(from: &UdpSocket, to: u16, at: &UdpSocket, pkt: &[u8]) -> (Vec<u8>, SocketAddr) {
    for _ in 0..20 {
        from.send_to(pkt, relay_addr(to)).await.unwrap();
        if let Some(got) = recv_within(at, Duration::from_millis(100)).await {
            return got;
        }
    }
    panic!("packet never arrived");
}

/// A call set up the way the voice code does it: offer from A, answer from B.
/// Returns (session, port A sends to, port B sends to).
fn setup(
    relay: &MediaRelay,
    a_sdp: &[u8],
    b_sdp: &[u8],
) -> (maskline::media::MediaSession, u16, u16) {
    let mut s = relay.allocate(Advertise::default()).unwrap();
    let to_b = s.offer(Leg::A, a_sdp).unwrap();
    let to_a = s.answer(Leg::B, b_sdp).unwrap();
    let (pa, pb) = (m_port(&to_a), m_port(&to_b));
    assert_eq!(pa, s.local_port(Leg::A));
    assert_eq!(pb, s.local_port(Leg::B));
    for body in [&to_a, &to_b] {
        let text = String::from_utf8(body.clone()).unwrap();
        assert!(!text.contains("user"), "{text}");
    }
    (s, pa, pb)
}

#[tokio::test]
async fn rtp_flows_both_ways_untouched_and_only_the_relay_is_seen() {
    let relay = relay(42000, 8, Duration::from_secs(30));
    let (a, b) = (phone().await, phone().await);
    let (_s, pa, pb) = setup(&relay, &sdp(port_of(&a), ""), &sdp(port_of(&b), ""));

    let first = rtp(0, 1, 0xaaaa_0001);
    let (got, from) = deliver(&a, pa, &b, &first).await;
    assert_eq!(got, first);
    assert_eq!(from, relay_addr(pb));
    for seq in 2..20u16 {
        let p = rtp(0, seq, 0xaaaa_0001);
        a.send_to(&p, relay_addr(pa)).await.unwrap();
        let (got, from) = recv(&b).await.unwrap();
        assert_eq!(got, p, "seq {seq}");
        assert_eq!(from, relay_addr(pb));
    }
    // RFC 4733 telephone-event passes as it is.
    let dtmf = rtp(101, 20, 0xaaaa_0001);
    a.send_to(&dtmf, relay_addr(pa)).await.unwrap();
    assert_eq!(recv(&b).await.unwrap().0, dtmf);

    for seq in 100..110u16 {
        let p = rtp(8, seq, 0xbbbb_0002);
        b.send_to(&p, relay_addr(pb)).await.unwrap();
        let (got, from) = recv(&a).await.unwrap();
        assert_eq!(got, p);
        assert_eq!(from, relay_addr(pa));
    }
    // The workers publish their counters after each batch: wait for the last one.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut st = relay.stats();
    while st.relayed_packets < 30 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        st = relay.stats();
    }
    assert_eq!(st.active_sessions, 1);
    assert!(st.relayed_packets >= 30, "{st:?}");
}

fn sdes(cname: &[u8]) -> Vec<u8> {
    // Empty receiver report, then SDES with one CNAME chunk.
    let mut p = vec![0x80, 201, 0, 1, 0, 0, 0, 9];
    let mut chunk = vec![0x12, 0x34, 0x56, 0x78, 1, cname.len() as u8];
    chunk.extend_from_slice(cname);
    chunk.push(0);
    while chunk.len() % 4 != 0 {
        chunk.push(0);
    }
    p.extend_from_slice(&[0x81, 202]);
    p.extend_from_slice(&((chunk.len() / 4) as u16).to_be_bytes());
    p.extend_from_slice(&chunk);
    p
}

#[tokio::test]
async fn rtcp_is_forwarded_with_the_cname_rewritten() {
    let relay = relay(42100, 8, Duration::from_secs(30));
    let (a, a_rtcp, b, b_rtcp) = (phone().await, phone().await, phone().await, phone().await);
    let a_sdp = sdp(port_of(&a), &format!("a=rtcp:{}\r\n", port_of(&a_rtcp)));
    let b_sdp = sdp(
        port_of(&b),
        &format!("a=rtcp:{} IN IP4 127.0.0.1\r\n", port_of(&b_rtcp)),
    );
    let (_s, pa, pb) = setup(&relay, &a_sdp, &b_sdp);
    let report = sdes(b"alice@192.0.2.10");
    let (got, from) = deliver(&a_rtcp, pa + 1, &b_rtcp, &report).await;
    assert_eq!(from, relay_addr(pb + 1));
    assert_eq!(got.len(), report.len());
    assert_eq!(got[..18], report[..18]);
    let text = String::from_utf8_lossy(&got);
    assert!(
        !text.contains("alice") && !text.contains("192.0.2.10"),
        "{text}"
    );
    // And back.
    let (got, from) = deliver(&b_rtcp, pb + 1, &a_rtcp, &sdes(b"bob@host")).await;
    assert_eq!(from, relay_addr(pa + 1));
    assert!(!String::from_utf8_lossy(&got).contains("bob"));
}

#[tokio::test]
async fn rtcp_mux_carries_rtcp_on_the_rtp_port() {
    let relay = relay(42200, 8, Duration::from_secs(30));
    let (a, b) = (phone().await, phone().await);
    let (_s, pa, pb) = setup(
        &relay,
        &sdp(port_of(&a), "a=rtcp-mux\r\n"),
        &sdp(port_of(&b), "a=rtcp-mux\r\n"),
    );
    let (got, from) = deliver(&a, pa, &b, &sdes(b"carol@10.1.1.1")).await;
    assert_eq!(from, relay_addr(pb));
    assert!(!String::from_utf8_lossy(&got).contains("carol"));
    let p = rtp(0, 7, 1);
    a.send_to(&p, relay_addr(pa)).await.unwrap();
    assert_eq!(recv(&b).await.unwrap().0, p);
}

#[tokio::test]
async fn a_leg_sending_from_another_port_is_latched_and_strangers_are_ignored() {
    let relay = relay(42300, 8, Duration::from_secs(30));
    // A's SDP names `a_declared`, but A's NAT sends from `a_real`.
    let (a_declared, a_real, b, stranger) =
        (phone().await, phone().await, phone().await, phone().await);
    let (_s, pa, pb) = setup(
        &relay,
        &sdp(port_of(&a_declared), ""),
        &sdp(port_of(&b), ""),
    );

    // Before A sent anything, B's media goes where A's SDP says.
    let (_, _) = deliver(&b, pb, &a_declared, &rtp(0, 1, 2)).await;

    let p = rtp(0, 1, 1);
    let (got, _) = deliver(&a_real, pa, &b, &p).await;
    assert_eq!(got, p);
    // Now B's media follows A's real source.
    let back = rtp(0, 2, 2);
    b.send_to(&back, relay_addr(pb)).await.unwrap();
    assert_eq!(recv(&a_real).await.unwrap().0, back);
    assert!(recv_within(&a_declared, Duration::from_millis(200))
        .await
        .is_none());

    // A stranger (same IP, other port) cannot inject into or hijack the stream.
    let dropped_before = relay.stats().dropped_unknown_source;
    for seq in 0..5 {
        stranger
            .send_to(&rtp(0, seq, 0x666), relay_addr(pa))
            .await
            .unwrap();
    }
    assert!(recv_within(&b, Duration::from_millis(300)).await.is_none());
    let back = rtp(0, 3, 2);
    b.send_to(&back, relay_addr(pb)).await.unwrap();
    assert_eq!(recv(&a_real).await.unwrap().0, back);
    assert!(recv_within(&stranger, Duration::from_millis(200))
        .await
        .is_none());
    tokio::time::sleep(Duration::from_millis(150)).await;
    let st = relay.stats();
    assert!(st.dropped_unknown_source >= dropped_before + 5, "{st:?}");
    assert!(st.latches >= 2, "{st:?}");
}

#[tokio::test]
async fn media_timeout_is_reported_once() {
    let relay = relay(42400, 4, Duration::from_millis(300));
    let (a, b) = (phone().await, phone().await);
    let (mut s, _, _) = setup(&relay, &sdp(port_of(&a), ""), &sdp(port_of(&b), ""));
    let ev = timeout(Duration::from_secs(3), s.events().recv())
        .await
        .unwrap();
    assert_eq!(ev, Some(MediaEvent::Timeout));
    assert!(timeout(Duration::from_millis(600), s.events().recv())
        .await
        .is_err());
    assert!(relay.stats().timeouts >= 1);
}

#[tokio::test]
async fn media_keeps_the_timeout_away() {
    let relay = relay(42450, 4, Duration::from_millis(300));
    let (a, b) = (phone().await, phone().await);
    let (mut s, pa, _) = setup(&relay, &sdp(port_of(&a), ""), &sdp(port_of(&b), ""));
    for seq in 0..15 {
        a.send_to(&rtp(0, seq, 1), relay_addr(pa)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(
            s.events().try_recv().is_err(),
            "timed out while media flowed"
        );
    }
}

#[tokio::test]
async fn ports_run_out_and_come_back_when_sessions_drop() {
    // Two pairs: exactly one session.
    let relay = relay(42500, 2, Duration::from_secs(30));
    let s = relay.allocate(Advertise::default()).unwrap();
    assert!(matches!(
        relay.allocate(Advertise::default()),
        Err(MediaError::PortsExhausted)
    ));
    assert_eq!(relay.stats().active_sessions, 1);
    drop(s);
    assert_eq!(relay.stats().active_sessions, 0);
    let mut again = None;
    for _ in 0..50 {
        if let Ok(s) = relay.allocate(Advertise::default()) {
            again = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(again.is_some(), "ports were not freed");
}

/// A call's ports are reused by a later call (the pair stays bound, parked with
/// its worker): packets the first call's phone still sends never reach the
/// second call's callee, and the second call's own media flows from its first
/// packet.
#[tokio::test]
async fn a_reused_pair_never_forwards_the_previous_calls_late_packets() {
    // Four pairs, two workers: sessions alternate workers, so the third session
    // takes the pairs the first one parked.
    let relay = relay(42600, 4, Duration::from_secs(30));
    let (a, b, c) = (phone().await, phone().await, phone().await);
    let (s1, pa, _) = setup(&relay, &sdp(port_of(&a), ""), &sdp(port_of(&b), ""));
    let first = rtp(0, 1, 0xaaaa_0001);
    assert_eq!(deliver(&a, pa, &b, &first).await.0, first);
    drop(s1);
    // The phone of the ended call keeps sending for a while.
    for seq in 2..40u16 {
        a.send_to(&rtp(0, seq, 0xaaaa_0001), relay_addr(pa))
            .await
            .unwrap();
    }
    // Its worker parks the pair a moment later.
    for _ in 0..100 {
        if relay.stats().free_port_pairs == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _s2 = relay.allocate(Advertise::default()).unwrap();
    // The same phone (same address) is A of the next call on the same ports.
    let (_s3, pa3, _) = setup(&relay, &sdp(port_of(&a), ""), &sdp(port_of(&c), ""));
    assert_eq!(pa3, pa, "the third session reuses the first one's pair");
    let fresh = rtp(0, 1000, 0xcccc_0003);
    let (got, _) = deliver(&a, pa, &c, &fresh).await;
    assert_eq!(
        u16::from_be_bytes([got[2], got[3]]),
        1000,
        "the new callee got a packet of the ended call"
    );
}

#[tokio::test]
async fn reinvite_with_a_new_address_repoints_the_stream() {
    let relay = relay(42600, 8, Duration::from_secs(30));
    let (a, b, a2) = (phone().await, phone().await, phone().await);
    let (mut s, pa, pb) = setup(&relay, &sdp(port_of(&a), ""), &sdp(port_of(&b), ""));
    deliver(&a, pa, &b, &rtp(0, 1, 1)).await;
    deliver(&b, pb, &a, &rtp(0, 1, 2)).await;

    // A moves (re-INVITE from A with a new port).
    let to_b = s.offer(Leg::A, &sdp(port_of(&a2), "")).unwrap();
    assert_eq!(m_port(&to_b), pb);
    let to_a = s.answer(Leg::B, &sdp(port_of(&b), "")).unwrap();
    assert_eq!(m_port(&to_a), pa);
    let (got, _) = deliver(&b, pb, &a2, &rtp(0, 2, 2)).await;
    assert_eq!(got, rtp(0, 2, 2));
    // The old address is no longer A.
    a.send_to(&rtp(0, 9, 1), relay_addr(pa)).await.unwrap();
    let p = rtp(0, 10, 3);
    a2.send_to(&p, relay_addr(pa)).await.unwrap();
    assert_eq!(recv(&b).await.unwrap().0, p, "old address leaked through");
}

#[tokio::test]
async fn hold_and_resume() {
    let relay = relay(42700, 8, Duration::from_secs(30));
    let (a, b) = (phone().await, phone().await);
    let (mut s, pa, _) = setup(&relay, &sdp(port_of(&a), ""), &sdp(port_of(&b), ""));
    deliver(&a, pa, &b, &rtp(0, 1, 1)).await;

    // A holds (sendonly, music on hold flows A → B).
    let to_b = s
        .offer(Leg::A, &sdp(port_of(&a), "a=sendonly\r\n"))
        .unwrap();
    assert!(String::from_utf8_lossy(&to_b).contains("a=sendonly"));
    let to_a = s
        .answer(Leg::B, &sdp(port_of(&b), "a=recvonly\r\n"))
        .unwrap();
    assert!(String::from_utf8_lossy(&to_a).contains("a=recvonly"));
    let p = rtp(0, 2, 1);
    a.send_to(&p, relay_addr(pa)).await.unwrap();
    assert_eq!(recv(&b).await.unwrap().0, p);

    // B holds the old way (c=0.0.0.0): nothing goes to B.
    let held = String::from_utf8(sdp(port_of(&b), "a=sendonly\r\n"))
        .unwrap()
        .replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
    let to_a = s.offer(Leg::B, held.as_bytes()).unwrap();
    assert!(String::from_utf8_lossy(&to_a).contains("c=IN IP4 0.0.0.0"));
    s.answer(Leg::A, &sdp(port_of(&a), "a=recvonly\r\n"))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    a.send_to(&rtp(0, 3, 1), relay_addr(pa)).await.unwrap();
    assert!(recv_within(&b, Duration::from_millis(300)).await.is_none());

    // Resume.
    s.offer(Leg::B, &sdp(port_of(&b), "a=sendrecv\r\n"))
        .unwrap();
    s.answer(Leg::A, &sdp(port_of(&a), "a=sendrecv\r\n"))
        .unwrap();
    let (got, _) = deliver(&a, pa, &b, &rtp(0, 4, 1)).await;
    assert_eq!(got, rtp(0, 4, 1));
}
