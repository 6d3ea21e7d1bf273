//! SDP rewriting for the relay: what one leg's body says about where it receives
//! media ([`Target`]), and the body the other leg gets instead.
//!
//! The body sent on names only the relay: `c=` (ours, except `0.0.0.0` hold lines
//! which stay unspecified), the port of the first active `m=` line (further active
//! streams are disabled with port 0: one port pair per leg is relayed), `o=` (user
//! `-`, our address, our session id, a version that moves only when the body
//! changes; a second `o=` is dropped), `s=` set to `-`, `i=`/`u=`/`e=`/`p=`
//! dropped at any level (they can name the caller), and `a=rtcp` plus every ICE
//! attribute removed. Every other line (codecs, `telephone-event`, `ptime`,
//! direction, `rtcp-mux`, bandwidth) passes as written.

use std::net::{IpAddr, SocketAddr};

use maskline_sip::sdp::{LineFields, SdpError, SdpLimits, SdpLines};

use super::MediaError;

/// Attributes that name the sender's own transport addresses or ICE state.
const DROPPED_ATTRIBUTES: &[&str] = &[
    "rtcp",
    "candidate",
    "remote-candidates",
    "ice-ufrag",
    "ice-pwd",
    "ice-options",
    "ice-lite",
    "ice-mismatch",
    "ice-pacing",
    "end-of-candidates",
];

/// Where one leg receives media, as its latest SDP says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Target {
    /// Media address; `None` before any SDP, on `c=0.0.0.0` hold, or with no
    /// active stream.
    pub ip: Option<IpAddr>,
    /// RTP port of the relayed stream.
    pub rtp_port: u16,
    /// RTCP address from `a=rtcp`, when given.
    pub rtcp: Option<SocketAddr>,
    /// The leg offered/accepted `a=rtcp-mux`.
    pub mux: bool,
    /// RTCP is plain (not SRTCP), so its SDES items can be scrubbed.
    pub scrub_rtcp: bool,
}

impl Target {
    /// Where this leg wants RTP.
    pub fn rtp(&self) -> Option<SocketAddr> {
        self.ip.map(|ip| SocketAddr::new(ip, self.rtp_port))
    }

    /// Where this leg wants RTCP when rtcp-mux is not in force.
    pub fn rtcp(&self) -> Option<SocketAddr> {
        self.rtcp.or_else(|| {
            self.ip
                .map(|ip| SocketAddr::new(ip, self.rtp_port.wrapping_add(1)))
        })
    }
}

/// The `o=` state of the bodies sent to one leg (RFC 3264 §8: same session id,
/// version incremented whenever the body changes).
#[derive(Debug, Clone, Default)]
pub(super) struct OriginState {
    pub session_id: u64,
    pub version: u64,
    /// The last body sent without its `o=` line.
    last: String,
}

impl OriginState {
    pub fn new(session_id: u64) -> OriginState {
        OriginState {
            session_id,
            version: 0,
            last: String::new(),
        }
    }
}

/// Reads the target out of `sdp` and returns the body to send on, advertising
/// `addr` and `port` (the relay's port facing the receiving leg).
///
/// One pass over the body's checked lines ([`SdpLines`], the checks of
/// `SessionDescription::parse`), copying the lines that pass and writing ours
/// for the others: no model is built or serialized (twice per call, that was
/// about 8 % of the relay's CPU per call).
pub(super) fn rewrite(
    sdp: &[u8],
    addr: IpAddr,
    port: u16,
    origin: &mut OriginState,
) -> Result<(Vec<u8>, Target), MediaError> {
    let bad = |e: SdpError| MediaError::BadSdp(e.to_string());
    let addr_type = if addr.is_ipv4() { "IP4" } else { "IP6" };
    // Our address as text, written once however many `c=` lines there are.
    let mut addr_s: Option<String> = None;
    // The body without its `o=` line, and where that line goes.
    let mut body = String::with_capacity(sdp.len() + 32);
    body.push_str("v=0\r\n");
    let mut origin_at = None;
    let mut session_conn = None;
    let mut in_media = false;
    // The first active stream (the relayed one), while its section is read.
    let mut first: Option<FirstStream<'_>> = None;
    let mut in_first = false;
    for line in SdpLines::new(sdp, SdpLimits::default()) {
        let line = line.map_err(bad)?;
        let value = line.value;
        match (line.fields, line.kind) {
            (LineFields::Media(m), _) => {
                in_media = true;
                in_first = m.port != 0 && first.is_none();
                if in_first {
                    first = Some(FirstStream {
                        rtp_port: m.port,
                        proto: m.proto,
                        conn: None,
                        rtcp: None,
                        mux: false,
                    });
                }
                let p = if in_first { port } else { 0 };
                body.push_str("m=");
                body.push_str(m.media);
                body.push(' ');
                push_decimal(&mut body, u64::from(p));
                if let Some(n) = m.num_ports {
                    body.push('/');
                    push_decimal(&mut body, u64::from(n));
                }
                body.push(' ');
                body.push_str(m.proto);
                for f in m.formats() {
                    body.push(' ');
                    body.push_str(f);
                }
                body.push_str("\r\n");
            }
            (LineFields::Connection(c), _) => {
                if !in_media {
                    session_conn.get_or_insert(c.address);
                }
                if let Some(f) = first.as_mut().filter(|_| in_first) {
                    f.conn.get_or_insert(c.address);
                }
                if c.address
                    .parse::<IpAddr>()
                    .is_ok_and(|a| a.is_unspecified())
                {
                    body.push_str("c=");
                    body.push_str(value);
                    body.push_str("\r\n");
                } else {
                    body.push_str("c=IN ");
                    body.push_str(addr_type);
                    body.push(' ');
                    body.push_str(addr_s.get_or_insert_with(|| addr.to_string()));
                    body.push_str("\r\n");
                }
            }
            (_, 'o') => {
                origin_at.get_or_insert(body.len());
            }
            (_, 's') => body.push_str("s=-\r\n"),
            // Free text and contacts: they can name the caller.
            (_, 'i' | 'u' | 'e' | 'p') => {}
            _ => {
                let attribute = line.attribute();
                if let (Some(f), Some((name, v))) = (first.as_mut().filter(|_| in_first), attribute)
                {
                    match name {
                        "rtcp" => f.rtcp = f.rtcp.or(v),
                        "rtcp-mux" => f.mux = true,
                        _ => {}
                    }
                }
                if !attribute.is_some_and(|(name, _)| DROPPED_ATTRIBUTES.contains(&name)) {
                    body.push(line.kind);
                    body.push('=');
                    body.push_str(value);
                    body.push_str("\r\n");
                }
            }
        }
    }
    let target = match first {
        Some(f) => f.target(session_conn)?,
        None => Target::default(),
    };

    // RFC 3264 §8: the version moves only when the body (but `o=`) changes.
    if origin.version == 0 || body != origin.last {
        origin.version += 1;
        origin.last.clear();
        origin.last.push_str(&body);
    }
    let Some((head, tail)) = origin_at.and_then(|at| body.as_bytes().split_at_checked(at)) else {
        return Ok((body.into_bytes(), target));
    };
    let mut o = String::with_capacity(64);
    o.push_str("o=- ");
    push_decimal(&mut o, origin.session_id);
    o.push(' ');
    push_decimal(&mut o, origin.version);
    o.push_str(" IN ");
    o.push_str(addr_type);
    o.push(' ');
    o.push_str(addr_s.get_or_insert_with(|| addr.to_string()));
    o.push_str("\r\n");
    let mut out = Vec::with_capacity(body.len() + o.len());
    out.extend_from_slice(head);
    out.extend_from_slice(o.as_bytes());
    out.extend_from_slice(tail);
    Ok((out, target))
}

/// Appends the decimal form of `n`.
fn push_decimal(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// What the rewrite learns of the first active stream while reading its section.
struct FirstStream<'a> {
    rtp_port: u16,
    proto: &'a str,
    /// Its own `c=` address.
    conn: Option<&'a str>,
    /// Its `a=rtcp` value.
    rtcp: Option<&'a str>,
    mux: bool,
}

impl FirstStream<'_> {
    /// Where this stream receives media; `session_conn` is the session-level
    /// `c=` address.
    fn target(&self, session_conn: Option<&str>) -> Result<Target, MediaError> {
        let conn = self
            .conn
            .or(session_conn)
            .ok_or_else(|| MediaError::BadSdp("active m= line without a c= line".into()))?;
        let ip: IpAddr = conn
            .split('/')
            .next()
            .unwrap_or_default()
            .parse()
            .map_err(|_| MediaError::BadSdp("c= address is not an IP address".into()))?;
        let ip = (!ip.is_unspecified()).then_some(ip);
        // a=rtcp:<port> [IN IP4 <addr>] (RFC 3605).
        let rtcp = self.rtcp.and_then(|v| {
            let mut it = v.split_ascii_whitespace();
            let port: u16 = it.next()?.parse().ok()?;
            let rtcp_ip = match (it.next(), it.next(), it.next()) {
                (Some(_), Some(_), Some(addr)) => addr.parse().ok()?,
                _ => ip?,
            };
            Some(SocketAddr::new(rtcp_ip, port))
        });
        Ok(Target {
            ip,
            rtp_port: self.rtp_port,
            rtcp: rtcp.filter(|_| ip.is_some()),
            mux: self.mux,
            scrub_rtcp: !self.proto.contains("SAVP"),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=+15551234567 42 7 IN IP4 192.0.2.10\r\ns=Alice Call\r\n\
        p=+15551234567\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\na=ice-ufrag:abcd\r\n\
        m=audio 49170 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n\
        a=fmtp:101 0-16\r\na=rtcp:49171 IN IP4 192.0.2.10\r\n\
        a=candidate:1 1 UDP 2130706431 192.0.2.10 49170 typ host\r\na=ice-pwd:x\r\n\
        a=rtcp-mux\r\na=ptime:20\r\na=sendrecv\r\nm=video 5000 RTP/AVP 96\r\n\
        a=rtpmap:96 H264/90000\r\n";

    fn rewrite_str(sdp: &str, o: &mut OriginState) -> (String, Target) {
        let ours: IpAddr = "203.0.113.5".parse().unwrap();
        let (b, t) = rewrite(sdp.as_bytes(), ours, 30000, o).unwrap();
        (String::from_utf8(b).unwrap(), t)
    }

    #[test]
    fn numbers_are_written_in_decimal() {
        for n in [0, 7, 10, 999, 1000, 30000, 65535, u64::MAX] {
            let mut s = String::from("m=");
            push_decimal(&mut s, n);
            assert_eq!(s, format!("m={n}"));
        }
    }

    #[test]
    fn nothing_of_the_sender_survives() {
        let mut o = OriginState::new(99);
        let (out, t) = rewrite_str(OFFER, &mut o);
        for leak in [
            "192.0.2.10",
            "15551234567",
            "49170",
            "49171",
            "Alice",
            "ice-",
            "candidate",
        ] {
            assert!(!out.contains(leak), "{leak} leaked in\n{out}");
        }
        assert!(out.contains("o=- 99 1 IN IP4 203.0.113.5\r\n"), "{out}");
        assert!(out.contains("c=IN IP4 203.0.113.5\r\n"));
        assert!(out.contains("m=audio 30000 RTP/AVP 0 101\r\n"));
        assert!(out.contains("m=video 0 RTP/AVP 96\r\n"));
        for kept in [
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-16",
            "a=rtcp-mux",
            "a=ptime:20",
            "a=sendrecv",
        ] {
            assert!(out.contains(kept), "{kept} missing in\n{out}");
        }
        assert_eq!(t.rtp(), Some("192.0.2.10:49170".parse().unwrap()));
        assert_eq!(t.rtcp(), Some("192.0.2.10:49171".parse().unwrap()));
        assert!(t.mux && t.scrub_rtcp);
    }

    #[test]
    fn version_moves_only_when_the_body_changes() {
        let mut o = OriginState::new(5);
        let (first, _) = rewrite_str(OFFER, &mut o);
        let (again, _) = rewrite_str(OFFER, &mut o);
        assert_eq!(first, again);
        let held = OFFER.replace("a=sendrecv", "a=sendonly");
        let (out, _) = rewrite_str(&held, &mut o);
        assert!(out.contains("o=- 5 2 IN IP4"), "{out}");
        assert!(out.contains("a=sendonly"));
    }

    #[test]
    fn media_level_text_and_origin_do_not_pass() {
        let mut o = OriginState::new(3);
        let sdp = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
            m=audio 4000 RTP/AVP 8\r\ni=Alice's phone\r\no=alice 77 9 IN IP4 192.0.2.1\r\n\
            p=+15551234567\r\nb=AS:64\r\n";
        let (out, _) = rewrite_str(sdp, &mut o);
        assert_eq!(
            out,
            "v=0\r\no=- 3 1 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\n\
             m=audio 30000 RTP/AVP 8\r\nb=AS:64\r\n"
        );
    }

    #[test]
    fn hold_with_unspecified_address_has_no_target() {
        let mut o = OriginState::new(1);
        let sdp = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n\
            m=audio 4000 RTP/AVP 8\r\n";
        let (out, t) = rewrite_str(sdp, &mut o);
        assert_eq!(t.ip, None);
        assert!(out.contains("c=IN IP4 0.0.0.0\r\n"), "{out}");
        assert!(!out.contains("192.0.2.1"));
        // SRTP: RTCP is encrypted and must not be touched.
        let srtp = "v=0\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 8\r\n";
        let (_, t) = rewrite_str(srtp, &mut o);
        assert!(!t.scrub_rtcp);
        assert!(rewrite(b"garbage", "127.0.0.1".parse().unwrap(), 1, &mut o).is_err());
    }

    /// Bodies built from lines a caller might send, in any order and mix (a
    /// fixed pseudo-random sequence, so a failure repeats).
    fn generated_bodies(n: usize) -> Vec<String> {
        let pieces = [
            "o=- 1 1 IN IP4 192.0.2.77",
            "o=alice smith 5 9 IN IP6 2001:db8::77",
            "o=x",
            "s=Alice's call",
            "i=+15557770000",
            "u=http://alice.example",
            "e=alice@example.com",
            "p=+15557770000",
            "c=IN IP4 192.0.2.77",
            "c=IN IP6 2001:db8::77",
            "c=IN IP4 0.0.0.0",
            "c=IN IP4 192.0.2.77/127",
            "c=IN IP4",
            "t=0 0",
            "b=AS:64",
            "m=audio 0 RTP/AVP 0",
            "m=audio 7000 RTP/AVP 0 8 101",
            "m=video 7002/2 RTP/SAVP 96",
            "m=audio x RTP/AVP 0",
            "a=rtcp:7001",
            "a=rtcp:7001 IN IP4 192.0.2.77",
            "a=rtcp-mux",
            "a=candidate:1 1 UDP 2130706431 192.0.2.77 7000 typ host",
            "a=ice-ufrag:abcd",
            "a=sendonly",
            "a=rtpmap:101 telephone-event/8000",
            "x=anything",
            "",
            "garbage",
        ];
        let mut seed: u64 = 0x5eed;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        (0..n)
            .map(|_| {
                let mut b = String::from("v=0\r\n");
                for _ in 0..next() % 14 {
                    b.push_str(pieces[next() % pieces.len()]);
                    b.push_str(if next() % 2 == 0 { "\r\n" } else { "\n" });
                }
                b
            })
            .collect()
    }

    #[test]
    fn every_rewritten_body_is_valid_sdp_naming_only_the_relay() {
        use maskline_sip::sdp::{SdpLine, SessionDescription};
        let ours: IpAddr = "203.0.113.5".parse().unwrap();
        let mut accepted = 0;
        for body in generated_bodies(5_000) {
            let mut o = OriginState::new(9);
            let Ok((out, target)) = rewrite(body.as_bytes(), ours, 30000, &mut o) else {
                continue;
            };
            accepted += 1;
            let text = String::from_utf8(out).unwrap();
            let sdp = SessionDescription::parse(text.as_bytes())
                .unwrap_or_else(|e| panic!("{e} in\n{text}\nfrom\n{body}"));
            for leak in [
                "192.0.2.77",
                "2001:db8::77",
                "7000",
                "7001",
                "7002",
                "15557770000",
                "alice",
                "Alice",
            ] {
                assert!(
                    !text.contains(leak),
                    "{leak} leaked in\n{text}\nfrom\n{body}"
                );
            }
            let lines = sdp
                .lines
                .iter()
                .chain(sdp.media.iter().flat_map(|m| &m.lines));
            let origins = lines
                .inspect(|l| {
                    if let SdpLine::Connection(c) = l {
                        assert!(c.address == "203.0.113.5" || c.is_unspecified(), "{text}");
                    }
                })
                .filter(|l| matches!(l, SdpLine::Origin(_)))
                .count();
            assert!(origins <= 1, "{text}");
            let active: Vec<u16> = sdp
                .media
                .iter()
                .map(|m| m.media.port)
                .filter(|&p| p != 0)
                .collect();
            assert!(active.is_empty() || active == [30000u16], "{text}");
            assert_eq!(target.rtp().is_some(), target.ip.is_some());
        }
        assert!(
            accepted > 1_000,
            "only {accepted} bodies accepted: the generator drifted"
        );
    }
}
