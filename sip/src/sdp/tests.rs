//! Unit tests for the SDP model, parser, serializer and helpers, using
//! carrier-style offers and answers written for these tests.

use super::*;

/// A trunk-side offer in the style of an SBC: several codecs, DTMF, ptime.
const CARRIER_OFFER: &str = "v=0\r\n\
o=SBC-Trunk 1732551845 1732551845 IN IP4 198.51.100.20\r\n\
s=SIP Media Capabilities\r\n\
c=IN IP4 198.51.100.21\r\n\
b=AS:84\r\n\
t=0 0\r\n\
m=audio 21456 RTP/AVP 0 8 18 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:18 G729/8000\r\n\
a=fmtp:18 annexb=no\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=sendrecv\r\n\
a=ptime:20\r\n\
a=maxptime:40\r\n";

/// An answer from a handset behind NAT: per-media c=, rtcp attribute.
const HANDSET_ANSWER: &str = "v=0\r\n\
o=+15550100 3898 3899 IN IP4 10.20.30.40\r\n\
s=Talk\r\n\
t=0 0\r\n\
m=audio 7078 RTP/AVP 8 101\r\n\
c=IN IP4 10.20.30.40\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=rtcp:7079 IN IP4 10.20.30.40\r\n\
a=sendrecv\r\n";

/// A re-INVITE putting the call on hold, with a fax (T.38) stream rejected.
const HOLD_REINVITE: &str = "v=0\r\n\
o=- 2890844526 2890844527 IN IP6 2001:db8::10\r\n\
s=-\r\n\
i=hold\r\n\
u=http://example.com/call\r\n\
e=noc@example.com\r\n\
p=+1 555 0100\r\n\
c=IN IP6 2001:db8::11\r\n\
t=3034423619 3042462419\r\n\
r=604800 3600 0 90000\r\n\
z=2882844526 -1h 2898848070 0\r\n\
k=prompt\r\n\
a=sendonly\r\n\
m=audio 30000 RTP/AVP 9 101\r\n\
i=voice\r\n\
b=TIAS:64000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
m=image 0 udptl t38\r\n\
a=T38FaxVersion:0\r\n\
y=0123456789\r\n";

fn parse(s: &str) -> SessionDescription {
    match SessionDescription::parse(s.as_bytes()) {
        Ok(sdp) => sdp,
        Err(e) => panic!("parse failed: {e}"),
    }
}

#[test]
fn carrier_offer_fields() {
    let sdp = parse(CARRIER_OFFER);
    let o = sdp.origin().unwrap();
    assert_eq!(o.username, "SBC-Trunk");
    assert_eq!(o.session_id, "1732551845");
    assert_eq!(o.address, "198.51.100.20");
    assert_eq!(sdp.session_name(), Some("SIP Media Capabilities"));
    assert_eq!(sdp.connection().unwrap().address, "198.51.100.21");
    assert!(sdp.lines.contains(&SdpLine::Bandwidth(Bandwidth {
        bwtype: "AS".into(),
        bandwidth: 84
    })));
    assert!(sdp
        .lines
        .contains(&SdpLine::Timing(Timing { start: 0, stop: 0 })));
    assert_eq!(sdp.media.len(), 1);
    let m = &sdp.media[0];
    assert_eq!(m.media.media, "audio");
    assert_eq!(m.media.port, 21456);
    assert_eq!(m.media.num_ports, None);
    assert_eq!(m.media.proto, "RTP/AVP");
    assert_eq!(m.media.formats, ["0", "8", "18", "101"]);
    assert_eq!(m.attribute("ptime").unwrap().value.as_deref(), Some("20"));
    assert_eq!(m.direction(), Some(Direction::SendRecv));
    assert_eq!(sdp.media_connection(m).unwrap().address, "198.51.100.21");
}

#[test]
fn carrier_offer_is_byte_identical_after_round_trip() {
    assert_eq!(parse(CARRIER_OFFER).to_string(), CARRIER_OFFER);
    assert_eq!(parse(HANDSET_ANSWER).to_string(), HANDSET_ANSWER);
    assert_eq!(parse(HOLD_REINVITE).to_string(), HOLD_REINVITE);
}

#[test]
fn carrier_offer_codecs() {
    let sdp = parse(CARRIER_OFFER);
    let codecs = sdp.media[0].codecs();
    let names: Vec<_> = codecs.iter().map(|c| c.encoding.as_str()).collect();
    assert_eq!(names, ["PCMU", "PCMA", "G729", "telephone-event"]);
    assert_eq!(codecs[2].fmtp.as_deref(), Some("annexb=no"));
    assert_eq!(codecs[3].payload_type, 101);
    assert_eq!(codecs[3].clock_rate, 8000);
    assert_eq!(codecs[3].fmtp.as_deref(), Some("0-15"));
    assert!(codecs[3].is_telephone_event());
    assert!(!codecs[0].is_telephone_event());
}

#[test]
fn static_payload_types_without_rtpmap() {
    let sdp = parse(HANDSET_ANSWER);
    let codecs = sdp.media[0].codecs();
    assert_eq!(codecs.len(), 2);
    assert_eq!(
        codecs[0],
        Codec {
            payload_type: 8,
            encoding: "PCMA".into(),
            clock_rate: 8000,
            channels: Some(1),
            fmtp: None
        }
    );
    assert_eq!(static_payload_type(0).unwrap().encoding, "PCMU");
    assert_eq!(static_payload_type(9).unwrap().encoding, "G722");
    assert!(static_payload_type(96).is_none());
}

#[test]
fn dynamic_pt_without_rtpmap_is_skipped_and_non_rtp_has_no_codecs() {
    let sdp = parse(
        "v=0\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 96 0 abc 200\r\n\
         m=image 5000 udptl t38\r\n",
    );
    let names: Vec<_> = sdp.media[0]
        .codecs()
        .into_iter()
        .map(|c| c.payload_type)
        .collect();
    assert_eq!(names, [0]);
    assert!(sdp.media[1].codecs().is_empty());
    assert!(!sdp.media[1].is_rtp());
}

#[test]
fn rtpmap_with_channels_and_webrtc_proto() {
    let sdp = parse(
        "v=0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
         a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n",
    );
    let c = &sdp.media[0].codecs()[0];
    assert_eq!(c.encoding, "opus");
    assert_eq!(c.clock_rate, 48000);
    assert_eq!(c.channels, Some(2));
    assert_eq!(c.fmtp.as_deref(), Some("minptime=10;useinbandfec=1"));
}

#[test]
fn hold_reinvite_fields_and_unknown_lines_kept() {
    let sdp = parse(HOLD_REINVITE);
    assert_eq!(sdp.origin().unwrap().addr_type, "IP6");
    assert_eq!(sdp.direction(), Some(Direction::SendOnly));
    assert_eq!(sdp.media[0].direction(), None);
    assert_eq!(sdp.media_direction(&sdp.media[0]), Direction::SendOnly);
    assert!(sdp.media[1].is_rejected());
    assert_eq!(sdp.media[1].media.proto, "udptl");
    assert_eq!(
        sdp.media[1].lines.last(),
        Some(&SdpLine::Other {
            kind: 'y',
            value: "0123456789".into()
        })
    );
    let kinds: String = sdp.lines.iter().map(SdpLine::kind).collect();
    assert_eq!(kinds, "osiuepctrzka");
    let media_kinds: String = sdp.media[0].lines.iter().map(SdpLine::kind).collect();
    assert_eq!(media_kinds, "iba");
}

#[test]
fn relay_rewrite_of_offer() {
    let mut sdp = parse(HANDSET_ANSWER);
    assert_eq!(sdp.set_origin("-", "203.0.113.1".parse().unwrap()), Ok(1));
    sdp.origin_mut().unwrap().increment_version().unwrap();
    assert_eq!(
        sdp.set_connection_address("203.0.113.1".parse().unwrap()),
        1
    );
    sdp.media[0].set_port(40002);
    assert_eq!(sdp.media[0].remove_attributes("rtcp"), 1);
    let out = sdp.to_string();
    assert!(!out.contains("10.20.30.40"), "{out}");
    assert!(!out.contains("15550100"), "{out}");
    assert_eq!(
        out,
        "v=0\r\no=- 3898 3900 IN IP4 203.0.113.1\r\ns=Talk\r\nt=0 0\r\n\
         m=audio 40002 RTP/AVP 8 101\r\nc=IN IP4 203.0.113.1\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
    );
}

#[test]
fn rewrite_switches_address_family() {
    let mut sdp = parse(HOLD_REINVITE);
    sdp.set_origin("relay", "192.0.2.7".parse().unwrap())
        .unwrap();
    sdp.set_connection_address("192.0.2.8".parse().unwrap());
    let o = sdp.origin().unwrap();
    assert_eq!(
        (o.addr_type.as_str(), o.address.as_str()),
        ("IP4", "192.0.2.7")
    );
    assert_eq!(sdp.connection().unwrap().addr_type, "IP4");
    assert!(!sdp.to_string().contains("2001:db8"));
}

#[test]
fn rewrite_reaches_duplicated_origin_and_connection_lines() {
    let mut sdp = parse(
        "v=0\r\no=a 1 1 IN IP4 10.0.0.1\r\no=b 1 1 IN IP4 10.0.0.2\r\ns=-\r\nt=0 0\r\n\
         m=audio 1 RTP/AVP 0\r\nc=IN IP4 10.0.0.3\r\nc=IN IP4 10.0.0.4\r\no=c 1 1 IN IP4 10.0.0.5\r\n",
    );
    assert_eq!(sdp.set_origin("-", "192.0.2.1".parse().unwrap()), Ok(3));
    assert_eq!(sdp.set_connection_address("192.0.2.1".parse().unwrap()), 2);
    assert!(!sdp.to_string().contains("10.0.0."));
}

#[test]
fn set_origin_rejects_injection() {
    let mut sdp = parse(CARRIER_OFFER);
    for bad in ["", "a b", "x\r\nc=IN IP4 1.2.3.4", "a\0"] {
        assert_eq!(
            sdp.set_origin(bad, "192.0.2.1".parse().unwrap()),
            Err(SdpError::InvalidValue {
                field: "origin username"
            })
        );
    }
    assert_eq!(sdp.origin().unwrap().username, "SBC-Trunk");
}

#[test]
fn increment_version_rejects_non_numeric_and_overflow() {
    let mut o = parse(CARRIER_OFFER).origin().cloned().unwrap();
    o.session_version = "abc".into();
    assert!(o.increment_version().is_err());
    o.session_version = u64::MAX.to_string();
    assert!(o.increment_version().is_err());
    o.session_version = "0".into();
    assert_eq!(o.increment_version(), Ok(()));
    assert_eq!(o.session_version, "1");
}

#[test]
fn media_connection_inserted_after_information() {
    let mut sdp = parse(CARRIER_OFFER);
    sdp.media[0].set_connection_address("192.0.2.50".parse().unwrap());
    assert_eq!(
        sdp.media[0].lines.first(),
        Some(&SdpLine::Connection(Connection::for_ip(
            "192.0.2.50".parse().unwrap()
        )))
    );
    // Session-level c= untouched by the per-media helper.
    assert_eq!(sdp.connection().unwrap().address, "198.51.100.21");
    // Existing media-level c= is rewritten in place, not duplicated.
    sdp.media[0].set_connection_address("192.0.2.51".parse().unwrap());
    let count = sdp.media[0]
        .lines
        .iter()
        .filter(|l| l.kind() == 'c')
        .count();
    assert_eq!(count, 1);
    assert_eq!(sdp.media[0].connection().unwrap().address, "192.0.2.51");
}

#[test]
fn set_direction_replaces_existing() {
    let mut sdp = parse(HOLD_REINVITE);
    sdp.set_direction(Direction::SendRecv);
    assert_eq!(sdp.direction(), Some(Direction::SendRecv));
    assert_eq!(sdp.attributes().filter(|a| a.value.is_none()).count(), 1);
    sdp.media[0].set_direction(Direction::Inactive);
    assert_eq!(sdp.media_direction(&sdp.media[0]), Direction::Inactive);
    assert!(Direction::SendRecv.sends() && Direction::SendRecv.receives());
    assert!(!Direction::RecvOnly.sends() && Direction::RecvOnly.receives());
    assert!(!Direction::Inactive.sends() && !Direction::Inactive.receives());
    assert_eq!(Direction::RecvOnly.reversed(), Direction::SendOnly);
}

#[test]
fn lf_only_blank_lines_and_trailing_space_are_accepted() {
    let sdp = parse(
        "v=0\no=- 1 1 IN IP4 1.2.3.4 \n\ns=x\t\nt=0 0\nm=audio 5/2 RTP/AVP 0\na=sendrecv \n\n",
    );
    assert_eq!(sdp.origin().unwrap().address, "1.2.3.4");
    assert_eq!(sdp.session_name(), Some("x"));
    assert_eq!(sdp.media[0].media.num_ports, Some(2));
    assert_eq!(sdp.media[0].direction(), Some(Direction::SendRecv));
    assert_eq!(
        sdp.to_string(),
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=x\r\nt=0 0\r\nm=audio 5/2 RTP/AVP 0\r\na=sendrecv\r\n"
    );
}

#[test]
fn origin_username_with_spaces() {
    let sdp = parse("v=0\r\no=Cisco SIP UA 7 8 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n");
    let o = sdp.origin().unwrap();
    assert_eq!(o.username, "Cisco SIP UA");
    assert_eq!(o.session_id, "7");
    assert_eq!(parse(&sdp.to_string()), sdp);
}

#[test]
fn malformed_noncritical_lines_are_kept_verbatim() {
    let sdp = parse("v=0\r\ns=-\r\nb=AS:lots\r\nt=now\r\na=\r\na=:x\r\na=bad name\r\n");
    let others: Vec<_> = sdp
        .lines
        .iter()
        .filter_map(|l| match l {
            SdpLine::Other { kind, value } => Some((*kind, value.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        others,
        [
            ('b', "AS:lots"),
            ('t', "now"),
            ('a', ""),
            ('a', ":x"),
            ('a', "bad name")
        ]
    );
    assert_eq!(parse(&sdp.to_string()), sdp);
}

#[test]
fn attributes_with_and_without_values() {
    let sdp = parse("v=0\r\ns=-\r\nt=0 0\r\na=ice-lite\r\na=group:BUNDLE 0 1\r\na=empty:\r\n");
    let attrs: Vec<_> = sdp.attributes().cloned().collect();
    assert_eq!(
        attrs,
        [
            Attribute::property("ice-lite"),
            Attribute::new("group", "BUNDLE 0 1"),
            Attribute::new("empty", "")
        ]
    );
    assert_eq!(
        sdp.attribute("group").unwrap().value.as_deref(),
        Some("BUNDLE 0 1")
    );
}

fn err(s: &[u8]) -> SdpError {
    match SessionDescription::parse(s) {
        Ok(sdp) => panic!("expected error, got {sdp:?}"),
        Err(e) => e,
    }
}

#[test]
fn structural_errors() {
    assert_eq!(err(b""), SdpError::Empty);
    assert_eq!(err(b"\r\n\r\n"), SdpError::Empty);
    assert_eq!(err(b"s=-\r\n"), SdpError::BadVersion);
    assert_eq!(err(b"v=1\r\n"), SdpError::BadVersion);
    assert_eq!(
        err(b"v=0\r\nnot a line\r\n"),
        SdpError::MalformedLine { line: 2 }
    );
    assert_eq!(err(b"v=0\r\n1=x\r\n"), SdpError::MalformedLine { line: 2 });
    assert_eq!(
        err(b"v=0\r\n\r\ns=a\rb\r\n"),
        SdpError::MalformedLine { line: 3 }
    );
    assert_eq!(err(b"v=0\r\ns=\xff\r\n"), SdpError::NotUtf8 { line: 2 });
    assert_eq!(
        err(b"v=0\r\nv=0\r\n"),
        SdpError::InvalidLine {
            line: 2,
            kind: 'v',
            reason: "more than one v= line"
        }
    );
}

#[test]
fn critical_lines_must_follow_grammar() {
    for (body, kind) in [
        (&b"v=0\r\no=- 1 IN IP4 1.2.3.4\r\n"[..], 'o'),
        (b"v=0\r\nc=IN IP4\r\n", 'c'),
        (b"v=0\r\nc=IN IP4 1.2.3.4 extra\r\n", 'c'),
        (b"v=0\r\nm=audio\r\n", 'm'),
        (b"v=0\r\nm=audio 1\r\n", 'm'),
        (b"v=0\r\nm=audio 70000 RTP/AVP 0\r\n", 'm'),
        (b"v=0\r\nm=audio -1 RTP/AVP 0\r\n", 'm'),
        (b"v=0\r\nm=audio 1/x RTP/AVP 0\r\n", 'm'),
    ] {
        match SessionDescription::parse(body) {
            Err(SdpError::InvalidLine {
                line: 2, kind: k, ..
            }) => assert_eq!(k, kind),
            other => panic!("{body:?}: unexpected {other:?}"),
        }
    }
}

#[test]
fn limits_are_enforced() {
    let limits = SdpLimits {
        max_size: 64,
        max_lines: 3,
        max_media: 1,
        max_formats: 2,
    };
    let big = vec![b'a'; 65];
    assert_eq!(
        SessionDescription::parse_with_limits(&big, &limits),
        Err(SdpError::TooLarge { size: 65, max: 64 })
    );
    assert_eq!(
        SessionDescription::parse_with_limits(b"v=0\ns=-\nt=0 0\na=x\n", &limits),
        Err(SdpError::TooManyLines { max: 3 })
    );
    // Blank lines do not count towards the line limit.
    assert!(SessionDescription::parse_with_limits(b"v=0\n\n\n\ns=-\nt=0 0\n", &limits).is_ok());
    assert_eq!(
        SessionDescription::parse_with_limits(b"v=0\nm=a 1 R 0\nm=b 1 R 0\n", &limits),
        Err(SdpError::TooManyMedia { max: 1 })
    );
    assert_eq!(
        SessionDescription::parse_with_limits(b"v=0\nm=a 1 R 0 1 2\n", &limits),
        Err(SdpError::TooManyFormats { line: 2, max: 2 })
    );
    let d = SdpLimits::default();
    assert_eq!(
        (d.max_size, d.max_lines, d.max_media, d.max_formats),
        (32768, 1024, 32, 64)
    );
}

#[test]
fn from_str_and_display_agree() {
    let sdp: SessionDescription = CARRIER_OFFER.parse().unwrap();
    assert_eq!(sdp.to_string().parse::<SessionDescription>(), Ok(sdp));
}

#[test]
fn retain_formats_drops_their_attributes_only() {
    let mut sdp = parse(CARRIER_OFFER);
    let removed = sdp.media[0].retain_formats(|f| matches!(f, "0" | "8" | "101"));
    assert_eq!(removed, 1);
    let m = &sdp.media[0];
    assert_eq!(m.media.formats, ["0", "8", "101"]);
    assert!(!sdp.to_string().contains("G729"));
    assert!(!sdp.to_string().contains("annexb"));
    // Other attributes and other payload types' lines stay.
    assert_eq!(m.attribute("ptime").unwrap().value.as_deref(), Some("20"));
    assert_eq!(m.codecs().len(), 3);
    assert_eq!(m.codecs()[2].fmtp.as_deref(), Some("0-15"));
    // Removing nothing changes nothing.
    let before = sdp.clone();
    assert_eq!(sdp.media[0].retain_formats(|_| true), 0);
    assert_eq!(sdp, before);
}

#[test]
fn unspecified_connection_detects_rfc2543_hold() {
    let sdp =
        parse("v=0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\nc=IN IP6 ::\r\n");
    assert!(sdp.connection().unwrap().is_unspecified());
    assert!(sdp.media[0].connection().unwrap().is_unspecified());
    assert!(!parse(CARRIER_OFFER).connection().unwrap().is_unspecified());
    let fqdn = parse("v=0\r\ns=-\r\nc=IN IP4 host.example\r\nt=0 0\r\n");
    assert!(!fqdn.connection().unwrap().is_unspecified());
}
