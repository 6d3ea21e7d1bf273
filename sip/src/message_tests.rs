//! Unit tests of message parsing, validation and serialization.

use super::*;
use crate::Host;

/// RFC 3261 §24.2 F1, with the SDP trimmed.
const F1_INVITE: &[u8] = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9\r\n\
Max-Forwards: 70\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
Call-ID: 3848276298220188511@atlanta.example.com\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:alice@client.atlanta.example.com;transport=tcp>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 151\r\n\
\r\n\
v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 client.atlanta.example.com\r\n\
s=-\r\n\
c=IN IP4 192.0.2.101\r\n\
t=0 0\r\n\
m=audio 49172 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

/// RFC 3261 §24.2 F9-style 200 OK relayed through a proxy.
const F9_OK: &[u8] = b"SIP/2.0 200 OK\r\n\
Via: SIP/2.0/TCP ss1.atlanta.example.com:5060;branch=z9hG4bK2d4790.1;received=192.0.2.111\r\n\
Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9;received=192.0.2.101\r\n\
Record-Route: <sip:ss1.atlanta.example.com;lr>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
To: Bob <sip:bob@biloxi.example.com>;tag=314159\r\n\
Call-ID: 3848276298220188511@atlanta.example.com\r\n\
CSeq: 2 INVITE\r\n\
Contact: <sip:bob@client.biloxi.example.com;transport=tcp>\r\n\
Content-Length: 0\r\n\
\r\n";

#[test]
fn rfc3261_invite_fields() {
    let m = Message::parse(F1_INVITE).unwrap();
    m.validate().unwrap();
    assert_eq!(m.method(), Some(Method::Invite));
    let ruri = m.request_uri().unwrap();
    assert_eq!(ruri.user(), Some("bob"));
    assert_eq!(ruri.host(), Some(Host::Domain("biloxi.example.com")));
    let via = m.top_via().unwrap();
    assert_eq!(via.transport(), "TCP");
    assert_eq!(via.port(), Some(5060));
    assert_eq!(via.branch(), Some("z9hG4bK74bf9"));
    assert_eq!(m.from().unwrap().display_name().as_deref(), Some("Alice"));
    assert_eq!(m.from().unwrap().tag(), Some("9fxced76sl"));
    assert_eq!(m.to().unwrap().tag(), None);
    assert_eq!(m.cseq().unwrap().seq, 1);
    assert_eq!(m.max_forwards().unwrap(), Some(70));
    let contact = m.contacts().next().unwrap().unwrap();
    assert_eq!(
        contact.addr().unwrap().uri().params().value("transport"),
        Some("tcp")
    );
    assert!(m.content_type().unwrap().unwrap().is("application", "sdp"));
    assert_eq!(m.content_length(), Some(151));
    assert_eq!(m.body().len(), 151);
    assert!(m.body().starts_with(b"v=0\r\n"));
    assert!(m.body().ends_with(b"PCMU/8000\r\n"));
}

#[test]
fn rfc3261_response_fields() {
    let m = Message::parse(F9_OK).unwrap();
    m.validate().unwrap();
    assert!(!m.is_request());
    assert_eq!(m.status(), Some(200));
    assert_eq!(m.status_line().unwrap().reason, "OK");
    let vias: Vec<_> = m.vias().collect::<Result<_, _>>().unwrap();
    assert_eq!(vias.len(), 2);
    assert_eq!(vias[0].received(), Some("192.0.2.111"));
    assert_eq!(vias[1].branch(), Some("z9hG4bK74bf9"));
    assert!(m
        .record_routes()
        .next()
        .unwrap()
        .unwrap()
        .uri()
        .params()
        .has("lr"));
    assert_eq!(m.to().unwrap().tag(), Some("314159"));
    assert!(m.body().is_empty());
}

#[test]
fn round_trip_is_stable() {
    for raw in [F1_INVITE, F9_OK] {
        let m = Message::parse(raw).unwrap();
        let bytes = m.to_bytes();
        assert_eq!(bytes.len(), m.encoded_len());
        assert_eq!(bytes, raw, "canonical input serializes byte-exactly");
        let again = Message::parse(&bytes).unwrap();
        assert_eq!(again, m);
    }
}

#[test]
fn multi_value_headers_and_folding() {
    let raw = b"OPTIONS sip:x@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/UDP b.example.com;branch=z9hG4bK2\r\n\
v: SIP/2.0/UDP c.example.com\r\n   ;branch=z9hG4bK3\r\n\
Route: <sip:p1.example.com;lr>,\r\n\t<sip:p2.example.com;lr>\r\n\
f: \"Quoted, \\\"name\\\"\" <sip:a@example.com>;tag=1\r\n\
t: sip:x@example.com\r\n\
i: 1@h\r\n\
CSeq: 1\r\n OPTIONS\r\n\
\r\n";
    let m = Message::parse(raw).unwrap();
    m.validate().unwrap();
    let branches: Vec<_> = m.vias().map(|v| v.unwrap().branch().unwrap()).collect();
    assert_eq!(branches, ["z9hG4bK1", "z9hG4bK2", "z9hG4bK3"]);
    let routes: Vec<_> = m.routes().map(|r| r.unwrap().uri().host_str()).collect();
    assert_eq!(routes, ["p1.example.com", "p2.example.com"]);
    assert_eq!(
        m.from().unwrap().display_name().as_deref(),
        Some("Quoted, \"name\"")
    );
    assert_eq!(m.cseq().unwrap().method, Method::Options);
    let again = m.to_bytes();
    assert_eq!(Message::parse(&again).unwrap(), m);
}

#[test]
fn datagram_body_rules() {
    // Extra bytes past Content-Length are ignored.
    let m = Message::parse(b"MESSAGE sip:a@b SIP/2.0\r\nl: 2\r\n\r\nhiEXTRA").unwrap();
    assert_eq!(m.body(), b"hi");
    // No Content-Length: rest of the datagram.
    let m = Message::parse(b"MESSAGE sip:a@b SIP/2.0\r\n\r\nhello").unwrap();
    assert_eq!(m.body(), b"hello");
    assert_eq!(m.content_length(), None);
    assert_eq!(
        Message::parse(b"MESSAGE sip:a@b SIP/2.0\r\nl: 20\r\n\r\nhi"),
        Err(ParseError::BodyTruncated)
    );
    assert_eq!(
        Message::parse(b"MESSAGE sip:a@b SIP/2.0\r\nl: 2\r\nContent-Length: 2\r\n\r\nhi"),
        Err(ParseError::DuplicateHeader("Content-Length"))
    );
    assert_eq!(
        Message::parse(b"MESSAGE sip:a@b SIP/2.0\r\nl: -2\r\n\r\nhi"),
        Err(ParseError::InvalidContentLength)
    );
}

#[test]
fn start_line_errors() {
    let cases: &[(&[u8], ParseError)] = &[
        (b"", ParseError::Empty),
        (b"\r\n\r\n", ParseError::Empty),
        (
            b"INVITE sip:a@b SIP/2.0\r\n",
            ParseError::UnterminatedHeaders,
        ),
        (
            b"INVITE sip:a@b SIP/7.0\r\n\r\n",
            ParseError::InvalidVersion,
        ),
        (
            b"INVITE  sip:a@b SIP/2.0\r\n\r\n",
            ParseError::InvalidStartLine,
        ),
        (
            b"INVITE sip:a@b HTTP/1.1\r\n\r\n",
            ParseError::InvalidStartLine,
        ),
        (b"INV@TE sip:a@b SIP/2.0\r\n\r\n", ParseError::InvalidMethod),
        (b"SIP/2.0 20 OK\r\n\r\n", ParseError::InvalidStatusCode),
        (b"SIP/2.0 999 OK\r\n\r\n", ParseError::InvalidStatusCode),
        (b"SIP/2.0 099 OK\r\n\r\n", ParseError::InvalidStatusCode),
        (b"SIP/3.0 200 OK\r\n\r\n", ParseError::InvalidVersion),
        (
            b"INVITE sip:a@b SIP/2.0\r\nVia x\r\n\r\n",
            ParseError::InvalidHeaderLine,
        ),
        (
            b"INVITE sip:a@b SIP/2.0\r\n Via: x\r\n\r\n",
            ParseError::InvalidHeaderLine,
        ),
        (
            b"INVITE sip:a@b SIP/2.0\r\nV ia: x\r\n\r\n",
            ParseError::InvalidHeaderLine,
        ),
        (
            b"INVITE sip:a@b SIP/2.0\r\nX: a\x00b\r\n\r\n",
            ParseError::InvalidEncoding,
        ),
        (
            b"INVITE sip:a@b SIP/2.0\r\nX: a\rb\r\n\r\n",
            ParseError::InvalidEncoding,
        ),
        (
            b"INVITE sip:a@b SIP/2.0\nX: ab\r\n\r\n",
            ParseError::InvalidEncoding,
        ),
        (
            b"INVITE sip:a@b SIP/2.0\r\nX: \xff\r\n\r\n",
            ParseError::InvalidEncoding,
        ),
    ];
    for (raw, want) in cases {
        assert_eq!(
            Message::parse(raw).as_ref().err(),
            Some(want),
            "{:?}",
            String::from_utf8_lossy(raw)
        );
    }
}

#[test]
fn limits_are_typed() {
    let base = F1_INVITE;
    let l = |f: fn(&mut Limits)| {
        let mut l = Limits::DEFAULT;
        f(&mut l);
        Message::parse_with(base, &l).unwrap_err()
    };
    assert_eq!(
        l(|l| l.max_message_size = 100),
        ParseError::MessageTooLarge { limit: 100 }
    );
    assert_eq!(
        l(|l| l.max_headers = 3),
        ParseError::TooManyHeaders { limit: 3 }
    );
    assert_eq!(
        l(|l| l.max_header_line = 40),
        ParseError::HeaderLineTooLong { limit: 40 }
    );
    assert_eq!(l(|l| l.max_via = 0), ParseError::TooManyVias { limit: 0 });
    assert_eq!(
        l(|l| l.max_body = 10),
        ParseError::BodyTooLarge { limit: 10 }
    );
    // Folded lines count towards the header line limit.
    let folded = b"BYE sip:a@b SIP/2.0\r\nX: aaaaaaaaaa\r\n bbbbbbbbbb\r\n cccccccccc\r\n\r\n";
    let limits = Limits {
        max_header_line: 30,
        ..Limits::DEFAULT
    };
    assert_eq!(
        Message::parse_with(folded, &limits),
        Err(ParseError::HeaderLineTooLong { limit: 30 })
    );
}

fn validate(raw: &[u8]) -> Result<(), ParseError> {
    Message::parse(raw)?.validate()
}

#[test]
fn validation_errors() {
    let ok = "OPTIONS sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
From: <sip:b@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n\r\n";
    validate(ok.as_bytes()).unwrap();
    let drop = |name: &str| {
        let s: String = ok
            .split_inclusive("\r\n")
            .filter(|l| !l.starts_with(name))
            .collect();
        validate(s.as_bytes()).unwrap_err()
    };
    assert_eq!(drop("Via"), ParseError::MissingHeader("Via"));
    assert_eq!(drop("From"), ParseError::MissingHeader("From"));
    assert_eq!(drop("To"), ParseError::MissingHeader("To"));
    assert_eq!(drop("Call-ID"), ParseError::MissingHeader("Call-ID"));
    assert_eq!(drop("CSeq"), ParseError::MissingHeader("CSeq"));
    // Max-Forwards is optional on input (the relay writes its own).
    validate(ok.replace("Max-Forwards: 70\r\n", "").as_bytes()).unwrap();
    let sub = |a: &str, b: &str| validate(ok.replace(a, b).as_bytes()).unwrap_err();
    assert_eq!(sub("1 OPTIONS", "1 INVITE"), ParseError::CSeqMethodMismatch);
    assert_eq!(
        sub("1 OPTIONS", "-1 OPTIONS"),
        ParseError::InvalidHeader("CSeq")
    );
    assert_eq!(
        sub("1 OPTIONS", "99999999999 OPTIONS"),
        ParseError::InvalidHeader("CSeq")
    );
    assert_eq!(
        sub("Forwards: 70", "Forwards: 4294967301"),
        ParseError::InvalidMaxForwards
    );
    assert_eq!(
        sub("sip:a@example.com SIP", "http://a SIP"),
        ParseError::UnsupportedUriScheme
    );
    assert_eq!(
        sub("sip:a@example.com SIP", "sip:a@[::1 SIP"),
        ParseError::InvalidRequestUri
    );
    assert_eq!(
        sub("<sip:b@example.com>", "\"bob <sip:b@example.com>"),
        ParseError::UnterminatedQuote
    );
    assert_eq!(
        sub("<sip:b@example.com>", "<sip:b@example.com"),
        ParseError::UnterminatedAngle
    );
    assert_eq!(
        sub("Call-ID: c1", "Call-ID: c1\r\ni: c2"),
        ParseError::DuplicateHeader("Call-ID")
    );
    assert_eq!(
        sub("Call-ID: c1", "Call-ID: "),
        ParseError::InvalidHeader("Call-ID")
    );
    assert_eq!(
        sub("SIP/2.0/UDP h;", "SIP/2.0/UDP ;"),
        ParseError::InvalidHeader("Via")
    );
    // An identical repeated Call-ID is tolerated.
    validate(ok.replace("Call-ID: c1", "Call-ID: c1\r\ni: c1").as_bytes()).unwrap();
}

#[test]
fn b2bua_identity_headers() {
    let raw = b"INVITE sip:+15550100@example.com;user=phone SIP/2.0\r\n\
Via: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKx\r\n\
From: \"Anon\" <sip:anonymous@anonymous.invalid>;tag=1\r\n\
To: <tel:+15550100>\r\nCall-ID: q\r\nCSeq: 1 INVITE\r\n\
P-Asserted-Identity: \"Alice\" <sip:+15550111@example.com;user=phone>, <tel:+15550111>\r\n\
Privacy: id;header\r\n\
Diversion: <sip:+15550122@example.com>;reason=unconditional;counter=1\r\n\
History-Info: <sip:a@example.com>;index=1, <sip:b@example.com?Reason=SIP%3Bcause%3D302>;index=1.1\r\n\
Reason: SIP;cause=200;text=\"Call completed elsewhere\"\r\n\
\r\n";
    let m = Message::parse(raw).unwrap();
    m.validate().unwrap();
    assert_eq!(m.top_via().unwrap().host(), Host::Ipv6("2001:db8::1"));
    let pai: Vec<_> = m.p_asserted_identities().collect::<Result<_, _>>().unwrap();
    assert_eq!(pai.len(), 2);
    assert_eq!(pai[1].uri().user(), Some("+15550111"));
    assert!(m.privacy().unwrap().unwrap().has("id"));
    let div = m.diversions().next().unwrap().unwrap();
    assert_eq!(div.params().value("reason"), Some("unconditional"));
    let hi: Vec<_> = m.history_info().collect::<Result<_, _>>().unwrap();
    assert_eq!(hi[1].params().value("index"), Some("1.1"));
    assert_eq!(hi[1].uri().headers(), Some("Reason=SIP%3Bcause%3D302"));
    let reason = m.reasons().next().unwrap().unwrap();
    assert_eq!(reason.cause(), Some(200));
    assert_eq!(m.to().unwrap().uri().user(), Some("+15550100"));
}

#[test]
fn header_lookup_by_name_and_kind() {
    let m = Message::parse(b"BYE sip:a@b SIP/2.0\r\nX-A: 1\r\nx-a: 2\r\nl: 0\r\n\r\n").unwrap();
    assert_eq!(m.header("X-A"), Some("1"));
    assert_eq!(m.header("content-length"), Some("0"));
    assert_eq!(m.get(HeaderName::ContentLength), Some("0"));
    assert_eq!(m.headers().iter().filter(|h| h.is("x-A")).count(), 2);
    assert_eq!(m.header("Via"), None);
}

#[test]
fn header_checks_report_after_line_errors() {
    // Content-Length and Via-depth checks run as headers are collected,
    // but a line-level error anywhere in the head is still reported first.
    let p = |raw: &[u8]| Message::parse(raw).unwrap_err();
    assert_eq!(
        p(b"BYE sip:a@b SIP/2.0\r\nl: x\r\nX-A: 1\nb\r\n\r\n"),
        ParseError::InvalidEncoding
    );
    assert_eq!(
        p(b"BYE sip:a@b SIP/2.0\r\nl: 1\r\nl: 2\r\nbad line\r\n\r\n"),
        ParseError::InvalidHeaderLine
    );
    assert_eq!(
        p(b"BYE sip:a@b SIP/2.0\r\nl: -1\r\nl: 1\r\n\r\n"),
        ParseError::InvalidContentLength
    );
    assert_eq!(
        p(b"BYE sip:a@b SIP/2.0\r\nl: 1\r\nl: -1\r\n\r\n"),
        ParseError::DuplicateHeader("Content-Length")
    );
    let vias = "v: SIP/2.0/UDP h\r\n".repeat(71);
    let raw = format!("BYE sip:a@b SIP/2.0\r\n{vias}l: x\r\n\r\n");
    assert_eq!(p(raw.as_bytes()), ParseError::TooManyVias { limit: 70 });
    let raw = format!("BYE sip:a@b SIP/2.0\r\n{vias}Bad Name: x\r\n\r\n");
    assert_eq!(p(raw.as_bytes()), ParseError::InvalidHeaderLine);
    // A name may be followed by white space before the colon; not by more
    // name bytes, and it may not be empty.
    let m = Message::parse(b"BYE sip:a@b SIP/2.0\r\nCall-ID \t: x\r\nX-Y  :z\r\n\r\n").unwrap();
    assert_eq!(m.call_id(), Ok("x"));
    assert_eq!(m.header("x-y"), Some("z"));
    for bad in [
        &b": x"[..],
        b"Via x: y",
        b"Via",
        b"V\xc3\xa9a: x",
        b"Via\x0b: x",
    ] {
        let mut raw = b"BYE sip:a@b SIP/2.0\r\n".to_vec();
        raw.extend_from_slice(bad);
        raw.extend_from_slice(b"\r\n\r\n");
        let e = p(&raw);
        assert!(
            matches!(
                e,
                ParseError::InvalidHeaderLine | ParseError::InvalidEncoding
            ),
            "{bad:?}: {e:?}"
        );
    }
}

#[test]
fn top_via_fast_path_agrees_with_comma_split() {
    for via in [
        "SIP/2.0/UDP h;branch=z9hG4bK1",
        "SIP/2.0/UDP h;x=\"a",
        "SIP/2.0/UDP h;x=<a",
        "SIP/2.0/UDP h;x=\"a,b\"",
        "SIP/2.0/UDP h;x=\"q\";y=1",
        "SIP/2.0/UDP h, SIP/2.0/TCP g",
        "SIP/2.0/UDP h ,",
        "",
        "garbage",
        "SIP/2.0/UDP [2001:db8::1]:5060;received=[2001:db8::2]",
    ] {
        let raw = format!("BYE sip:a@b SIP/2.0\r\nVia: {via}\r\nVia: SIP/2.0/TCP second\r\n\r\n");
        let m = Message::parse(raw.as_bytes()).unwrap();
        let slow = m
            .values(HeaderName::Via)
            .next()
            .unwrap()
            .map_err(|_| ParseError::InvalidHeader("Via"))
            .and_then(Via::parse);
        assert_eq!(m.top_via(), slow, "{via:?}");
    }
}
