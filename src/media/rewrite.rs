//! SDP rewriting for the relay: what one leg's body says about where it receives
//! media ([`Target`]), and the body the other leg gets instead.
//!
//! The body sent on names only the relay: `c=` (ours, except `0.0.0.0` hold lines
//! which stay unspecified), the port of the first active `m=` line (further active
//! streams are disabled with port 0: one port pair per leg is relayed), `o=` (user
//! `-`, our address, our session id, a version that moves only when the body
//! changes), session-level `s=` set to `-` and `i=`/`u=`/`e=`/`p=` dropped (they can
//! name the caller), and `a=rtcp` plus every ICE attribute removed. Every other
//! attribute (codecs, `telephone-event`, `ptime`, direction, `rtcp-mux`) passes.

use std::net::{IpAddr, SocketAddr};

use maskline_sip::sdp::{Connection, SdpLine, SessionDescription};

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
pub(super) fn rewrite(
    sdp: &[u8],
    addr: IpAddr,
    port: u16,
    origin: &mut OriginState,
) -> Result<(Vec<u8>, Target), MediaError> {
    let mut desc = SessionDescription::parse(sdp).map_err(|e| MediaError::BadSdp(e.to_string()))?;
    let target = target_of(&desc)?;

    let ours = Connection::for_ip(addr);
    desc.lines.retain(|l| {
        !matches!(
            l,
            SdpLine::Information(_) | SdpLine::Uri(_) | SdpLine::Email(_) | SdpLine::Phone(_)
        ) && !matches!(l, SdpLine::Attribute(a) if DROPPED_ATTRIBUTES.contains(&a.name.as_str()))
    });
    for line in desc
        .lines
        .iter_mut()
        .chain(desc.media.iter_mut().flat_map(|m| m.lines.iter_mut()))
    {
        match line {
            SdpLine::Connection(c) if !c.is_unspecified() => *c = ours.clone(),
            SdpLine::SessionName(s) => *s = "-".to_owned(),
            _ => {}
        }
    }
    let mut relayed = false;
    for m in &mut desc.media {
        m.lines.retain(|l| {
            !matches!(l, SdpLine::Attribute(a) if DROPPED_ATTRIBUTES.contains(&a.name.as_str()))
        });
        if m.is_rejected() {
            continue;
        }
        m.set_port(if relayed { 0 } else { port });
        relayed = true;
    }

    desc.set_origin("-", addr)
        .map_err(|e| MediaError::BadSdp(e.to_string()))?;
    // Written once, with the next version; if everything but `o=` is what this leg
    // got last time, the version goes back to the last one (patched in place).
    let next = origin.version + 1;
    let mut body = with_origin(&mut desc, origin.session_id, next);
    let o = origin_line(&body);
    let changed = origin.version == 0
        || body.len() - o.len() != origin.last.len()
        || !(body[..o.start] == origin.last[..o.start] && body[o.end..] == origin.last[o.start..]);
    if changed {
        origin.version = next;
        origin.last.clear();
        origin.last.push_str(&body[..o.start]);
        origin.last.push_str(&body[o.end..]);
    } else {
        let line = body[o.clone()].replacen(
            &format!(" {} {next} ", origin.session_id),
            &format!(" {} {} ", origin.session_id, origin.version),
            1,
        );
        body.replace_range(o, &line);
    }
    Ok((body.into_bytes(), target))
}

/// Byte range of the `o=` line (with its line end) in a serialized body.
fn origin_line(body: &str) -> std::ops::Range<usize> {
    let start = if body.starts_with("o=") {
        Some(0)
    } else {
        body.find("\no=").map(|i| i + 1)
    };
    match start {
        Some(s) => {
            let end = body[s..].find('\n').map_or(body.len(), |e| s + e + 1);
            s..end
        }
        None => 0..0,
    }
}

fn with_origin(desc: &mut SessionDescription, id: u64, version: u64) -> String {
    if let Some(o) = desc.origin_mut() {
        o.session_id = id.to_string();
        o.session_version = version.to_string();
    }
    desc.to_string()
}

/// Where the first active stream of `desc` receives media.
fn target_of(desc: &SessionDescription) -> Result<Target, MediaError> {
    let Some(m) = desc.media.iter().find(|m| !m.is_rejected()) else {
        return Ok(Target::default());
    };
    let conn = desc
        .media_connection(m)
        .ok_or_else(|| MediaError::BadSdp("active m= line without a c= line".into()))?;
    let ip: IpAddr = conn
        .address
        .split('/')
        .next()
        .unwrap_or_default()
        .parse()
        .map_err(|_| MediaError::BadSdp("c= address is not an IP address".into()))?;
    let ip = (!ip.is_unspecified()).then_some(ip);
    // a=rtcp:<port> [IN IP4 <addr>] (RFC 3605).
    let rtcp = m.attribute("rtcp").and_then(|a| {
        let mut it = a.value.as_deref()?.split_ascii_whitespace();
        let port: u16 = it.next()?.parse().ok()?;
        let rtcp_ip = match (it.next(), it.next(), it.next()) {
            (Some(_), Some(_), Some(addr)) => addr.parse().ok()?,
            _ => ip?,
        };
        Some(SocketAddr::new(rtcp_ip, port))
    });
    Ok(Target {
        ip,
        rtp_port: m.media.port,
        rtcp: rtcp.filter(|_| ip.is_some()),
        mux: m.attribute("rtcp-mux").is_some(),
        scrub_rtcp: !m.media.proto.contains("SAVP"),
    })
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
}
