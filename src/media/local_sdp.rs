//! SDP for calls the relay answers itself (IVR): picking leg A's G.711 codec and
//! DTMF format from its offer, and writing the relay's own answer.

use std::net::IpAddr;

use maskline_sip::sdp::{SdpLine, SessionDescription};

use super::prompt::G711;
use super::rewrite::OriginState;
use super::MediaError;

/// The codecs chosen from an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Chosen {
    pub law: G711,
    pub te_pt: Option<u8>,
    /// The offer reduced to the chosen payload types (for the B leg).
    pub reduced: Vec<u8>,
}

/// The first G.711 codec (static payload type 0 or 8) of the first active audio
/// stream of `offer`, and its 8 kHz `telephone-event` payload type if any.
pub(super) fn choose_g711(offer: &[u8]) -> Result<Chosen, MediaError> {
    let mut desc =
        SessionDescription::parse(offer).map_err(|e| MediaError::BadSdp(e.to_string()))?;
    let m = desc
        .media
        .iter_mut()
        .find(|m| !m.is_rejected() && m.media.media == "audio" && m.is_rtp())
        .ok_or_else(|| MediaError::BadSdp("no active audio stream".into()))?;
    let codecs = m.codecs();
    let law = codecs
        .iter()
        .find_map(|c| {
            G711::of_payload_type(c.payload_type)
                .filter(|l| c.encoding.eq_ignore_ascii_case(l.name()) && c.clock_rate == 8000)
        })
        .ok_or(MediaError::NoG711)?;
    let te_pt = codecs
        .iter()
        .find(|c| c.is_telephone_event() && c.clock_rate == 8000)
        .map(|c| c.payload_type);
    let keep: Vec<String> = std::iter::once(law.payload_type())
        .chain(te_pt)
        .map(|p| p.to_string())
        .collect();
    m.media.formats.clone_from(&keep);
    m.lines.retain(|l| match l {
        SdpLine::Attribute(a) if a.name == "rtpmap" || a.name == "fmtp" => a
            .value
            .as_deref()
            .and_then(|v| v.split_whitespace().next())
            .is_some_and(|pt| keep.iter().any(|k| k == pt)),
        _ => true,
    });
    Ok(Chosen {
        law,
        te_pt,
        reduced: desc.to_string().into_bytes(),
    })
}

/// The relay's answer to leg A: one audio stream at `addr:port` with `law` (and
/// `telephone-event` at `te_pt`), 20 ms packets, send and receive.
pub(super) fn local_answer(
    addr: IpAddr,
    port: u16,
    law: G711,
    te_pt: Option<u8>,
    origin: &mut OriginState,
) -> Vec<u8> {
    origin.version += 1;
    let net = if addr.is_ipv4() { "IP4" } else { "IP6" };
    let pt = law.payload_type();
    let mut s = format!(
        "v=0\r\no=- {} {} IN {net} {addr}\r\ns=-\r\nc=IN {net} {addr}\r\nt=0 0\r\n",
        origin.session_id, origin.version
    );
    match te_pt {
        Some(te) => s.push_str(&format!(
            "m=audio {port} RTP/AVP {pt} {te}\r\na=rtpmap:{pt} {}/8000\r\n\
             a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-15\r\n",
            law.name()
        )),
        None => s.push_str(&format!(
            "m=audio {port} RTP/AVP {pt}\r\na=rtpmap:{pt} {}/8000\r\n",
            law.name()
        )),
    }
    s.push_str("a=ptime:20\r\na=sendrecv\r\n");
    s.into_bytes()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn first_g711_and_dtmf_are_chosen_and_the_rest_dropped() {
        let offer = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
            m=audio 4000 RTP/AVP 18 8 0 101\r\na=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=no\r\n\
            a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n";
        let c = choose_g711(offer.as_bytes()).unwrap();
        assert_eq!((c.law, c.te_pt), (G711::Pcma, Some(101)));
        let r = String::from_utf8(c.reduced).unwrap();
        assert!(r.contains("m=audio 4000 RTP/AVP 8 101\r\n"), "{r}");
        assert!(!r.contains("G729") && !r.contains("annexb"), "{r}");
        let no = "v=0\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18\r\n";
        assert!(matches!(
            choose_g711(no.as_bytes()),
            Err(MediaError::NoG711)
        ));
    }

    #[test]
    fn the_answer_names_only_the_relay() {
        let mut o = OriginState::new(7);
        let a = local_answer(
            "203.0.113.5".parse().unwrap(),
            30000,
            G711::Pcmu,
            Some(96),
            &mut o,
        );
        let a = String::from_utf8(a).unwrap();
        assert!(a.contains("c=IN IP4 203.0.113.5\r\n"));
        assert!(a.contains("m=audio 30000 RTP/AVP 0 96\r\n"));
        assert!(a.contains("a=rtpmap:96 telephone-event/8000\r\n"));
        SessionDescription::parse(a.as_bytes()).unwrap();
    }
}
