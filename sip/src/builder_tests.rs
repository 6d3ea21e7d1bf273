//! Unit tests of the message builders.

use super::*;

const INVITE: &[u8] = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp1\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKa1;received=192.0.2.1\r\n\
Record-Route: <sip:proxy.example.com;lr>\r\n\
Route: <sip:edge.example.com;lr>\r\n\
Max-Forwards: 69\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
Call-ID: a84b4c76e66710\r\n\
CSeq: 314159 INVITE\r\n\
Timestamp: 54\r\n\
P-Asserted-Identity: <sip:alice@atlanta.example.com>\r\n\
Content-Length: 0\r\n\r\n";

fn parse(b: &[u8]) -> Message<'_> {
    Message::parse(b).unwrap()
}

#[test]
fn trying_has_no_tag_and_copies_timestamp() {
    let req = parse(INVITE);
    let out = MessageBuilder::response_to(&req, 100, "Trying", Some("t"))
        .unwrap()
        .build()
        .unwrap();
    let r = parse(&out);
    r.validate().unwrap();
    assert_eq!(r.to().unwrap().tag(), None);
    assert_eq!(r.get(HeaderName::Timestamp), Some("54"));
    assert_eq!(r.record_routes().count(), 0);
    assert_eq!(r.get(HeaderName::PAssertedIdentity), None);
}

#[test]
fn final_response_copies_exactly() {
    let req = parse(INVITE);
    let out = MessageBuilder::response_to(&req, 486, "Busy Here", Some("xyz"))
        .unwrap()
        .reason("Q.850", 17, "User busy")
        .build()
        .unwrap();
    let r = parse(&out);
    r.validate().unwrap();
    let vias: Vec<_> = r.vias().map(|v| v.unwrap().branch().unwrap()).collect();
    assert_eq!(vias, ["z9hG4bKp1", "z9hG4bKa1"]);
    assert_eq!(
        r.top_via().unwrap().as_str(),
        req.top_via().unwrap().as_str()
    );
    assert_eq!(r.from().unwrap(), req.from().unwrap());
    assert_eq!(r.to().unwrap().tag(), Some("xyz"));
    assert_eq!(r.call_id().unwrap(), "a84b4c76e66710");
    assert_eq!(r.cseq().unwrap(), req.cseq().unwrap());
    // Record-Route only in 101..=299.
    assert_eq!(r.record_routes().count(), 0);
    assert_eq!(r.get(HeaderName::Timestamp), None);
    assert_eq!(r.reasons().next().unwrap().unwrap().cause(), Some(17));
    assert_eq!(r.status_line().unwrap().reason, "Busy Here");
}

#[test]
fn existing_to_tag_is_kept() {
    let raw = String::from_utf8(INVITE.to_vec()).unwrap().replace(
        "To: Bob <sip:bob@biloxi.example.com>",
        "To: Bob <sip:bob@biloxi.example.com>;tag=old",
    );
    let req = parse(raw.as_bytes());
    let out = MessageBuilder::response_to(&req, 200, "OK", Some("new"))
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(parse(&out).to().unwrap().tag(), Some("old"));
}

#[test]
fn ok_copies_record_route_and_body() {
    let req = parse(INVITE);
    let out = MessageBuilder::response_to(&req, 200, "OK", Some("t"))
        .unwrap()
        .header("Contact", "<sip:relay.example.net>")
        .body("application/sdp", b"v=0\r\n")
        .build()
        .unwrap();
    let r = parse(&out);
    assert_eq!(r.record_routes().count(), 1);
    assert_eq!(r.body(), b"v=0\r\n");
    assert_eq!(r.content_length(), Some(5));
    assert!(r.content_type().unwrap().unwrap().is("application", "sdp"));
}

#[test]
fn cancel_and_ack() {
    let req = parse(INVITE);
    let c = MessageBuilder::cancel_for(&req).unwrap().build().unwrap();
    let c = parse(&c);
    c.validate().unwrap();
    assert_eq!(c.method(), Some(Method::Cancel));
    assert_eq!(c.request_line().unwrap().uri, "sip:bob@biloxi.example.com");
    assert_eq!(c.vias().count(), 1);
    assert_eq!(c.top_via().unwrap().branch(), Some("z9hG4bKp1"));
    assert_eq!(c.cseq().unwrap().seq, 314_159);
    assert_eq!(c.cseq().unwrap().method, Method::Cancel);
    assert_eq!(c.routes().count(), 1);
    assert_eq!(c.to().unwrap().tag(), None);

    let resp_bytes = MessageBuilder::response_to(&req, 487, "Request Terminated", Some("rt"))
        .unwrap()
        .build()
        .unwrap();
    let resp = parse(&resp_bytes);
    let a = MessageBuilder::ack_for(&req, &resp)
        .unwrap()
        .build()
        .unwrap();
    let a = parse(&a);
    a.validate().unwrap();
    assert_eq!(a.method(), Some(Method::Ack));
    assert_eq!(a.to().unwrap().tag(), Some("rt"));
    assert_eq!(a.cseq().unwrap().method, Method::Ack);
    assert_eq!(a.max_forwards().unwrap(), Some(70));
}

#[test]
fn error_response_requires_readable_basics() {
    let req = parse(b"INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP p;branch=z9hG4bK1\r\n\r\n");
    let err = req.validate().unwrap_err();
    assert_eq!(err, ParseError::MissingHeader("From"));
    assert_eq!(
        MessageBuilder::error_response(&req, &err),
        Err(BuildError::Source(ParseError::MissingHeader("From")))
    );
}

#[test]
fn error_response_for_missing_max_forwards_style_errors() {
    let raw = String::from_utf8(INVITE.to_vec())
        .unwrap()
        .replace("CSeq: 314159 INVITE", "CSeq: 314159 BYE");
    let req = parse(raw.as_bytes());
    let err = req.validate().unwrap_err();
    let out = MessageBuilder::error_response(&req, &err).unwrap();
    let r = parse(&out);
    assert_eq!(r.status(), Some(400));
    assert!(r.to().unwrap().tag().is_some_and(|t| t.len() == 24));
}

#[test]
fn request_from_allow_list() {
    let req = parse(INVITE);
    let out = MessageBuilder::request(Method::Invite, "sip:carol@example.org")
        .via("TLS", "relay.example.net:5061", "z9hG4bKabc")
        .max_forwards(70)
        .header("From", "<sip:+15550199@relay.example.net>;tag=r1")
        .header("To", "<sip:carol@example.org>")
        .header_kind(HeaderName::CallId, "fresh")
        .cseq(1, Method::Invite)
        .copy_headers(
            &req,
            &[
                HeaderName::Route,
                HeaderName::ContentLength,
                HeaderName::Other,
            ],
        )
        .header("content-length", "999")
        .build()
        .unwrap();
    let m = parse(&out);
    m.validate().unwrap();
    assert_eq!(m.top_via().unwrap().transport(), "TLS");
    assert_eq!(m.top_via().unwrap().rport(), Some(None));
    assert_eq!(m.routes().count(), 1);
    assert_eq!(m.get(HeaderName::PAssertedIdentity), None);
    assert_eq!(m.content_length(), Some(0));
    assert_eq!(m.get_all(HeaderName::ContentLength).count(), 1);
    let text = String::from_utf8(out.clone()).unwrap();
    assert!(text.contains("\r\nCall-ID: fresh\r\n"));
    let without = MessageBuilder::request(Method::Bye, "sip:a@b")
        .header("Subject", "x")
        .without(HeaderName::Subject)
        .build()
        .unwrap();
    assert!(!String::from_utf8(without).unwrap().contains("Subject"));
}

#[test]
fn builder_rejects_injection() {
    assert_eq!(
        MessageBuilder::request(Method::Bye, "sip:a@b\r\nX: 1").build(),
        Err(BuildError::InvalidRequestUri)
    );
    assert_eq!(
        MessageBuilder::response(200, "OK\r\nX: 1").build(),
        Err(BuildError::InvalidReasonPhrase)
    );
    assert_eq!(
        MessageBuilder::response(99, "x").build(),
        Err(BuildError::InvalidStatusCode)
    );
    assert_eq!(
        MessageBuilder::request(Method::Bye, "sip:a@b")
            .header("Bad Name", "v")
            .build(),
        Err(BuildError::InvalidHeaderName)
    );
    assert!(MessageBuilder::request(Method::Bye, "sip:a@b")
        .header("X", "a\nb")
        .build()
        .is_err());
    assert!(MessageBuilder::request(Method::Bye, "sip:a@b")
        .header("X", "a\r\nb")
        .build()
        .is_err());
    assert!(MessageBuilder::request(Method::Bye, "sip:a@b")
        .header("X", "a\r\n b")
        .build()
        .is_ok());
    let req = parse(INVITE);
    assert!(MessageBuilder::response_to(&req, 200, "OK", Some("a;b=c"))
        .unwrap()
        .build()
        .is_err());
}

#[test]
fn reason_text_is_escaped() {
    let out = MessageBuilder::response(500, "Server Error")
        .reason("SIP", 500, "a\\b\"c")
        .build()
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains(r#"Reason: SIP;cause=500;text="a\\b\"c""#),
        "{text}"
    );
}

#[test]
fn decimal_writer() {
    for n in [0u64, 7, 10, 70, 255, 4_294_967_295, u64::MAX] {
        let mut out = Vec::new();
        push_decimal(&mut out, n);
        assert_eq!(out, n.to_string().into_bytes());
    }
}

#[test]
fn without_and_body_replace_folded_and_repeated_headers() {
    let out = MessageBuilder::request(Method::Message, "sip:a@b")
        .header("Subject", "first\r\n second")
        .header("X-Keep", "1")
        .header("Subject", "again")
        .body("text/plain", b"one")
        .body("text/html", b"<b>two</b>")
        .without(HeaderName::Subject)
        .build()
        .unwrap();
    let text = String::from_utf8(out.clone()).unwrap();
    assert!(!text.contains("Subject"), "{text}");
    assert!(!text.contains("second"), "{text}");
    assert!(!text.contains("text/plain"), "{text}");
    let m = parse(&out);
    assert_eq!(m.header("X-Keep"), Some("1"));
    assert!(m.content_type().unwrap().unwrap().is("text", "html"));
    assert_eq!(m.body(), b"<b>two</b>");
    assert_eq!(m.headers().len(), 3);
}

#[test]
fn extension_method_must_be_a_token() {
    let bad = MessageBuilder::request(Method::Bye, "sip:a@b")
        .cseq(1, Method::Extension("BAD METHOD"))
        .build();
    assert_eq!(bad, Err(BuildError::InvalidHeaderValue("CSeq".into())));
}

fn stamped(via: &str, source: &str) -> String {
    let raw = format!(
        "OPTIONS sip:b@h SIP/2.0\r\nVia: {via}\r\nFrom: <sip:a@h>;tag=9\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n"
    );
    let req = parse(raw.as_bytes());
    let out = MessageBuilder::response_to(&req, 200, "OK", Some("t"))
        .unwrap()
        .stamp_received(source.parse().unwrap())
        .build()
        .unwrap();
    let resp = Message::parse(&out).unwrap();
    resp.validate().unwrap();
    resp.get(HeaderName::Via).unwrap().to_owned()
}

#[test]
fn stamp_received_follows_rfc3261_and_rfc3581() {
    // Domain sent-by: received added, no rport requested.
    assert_eq!(
        stamped(
            "SIP/2.0/UDP pc33.example.com;branch=z9hG4bK1",
            "192.0.2.4:5060"
        ),
        "SIP/2.0/UDP pc33.example.com;branch=z9hG4bK1;received=192.0.2.4"
    );
    // Same address, no rport: untouched apart from normalised spacing.
    assert_eq!(
        stamped(
            "SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bK1",
            "192.0.2.4:5060"
        ),
        "SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bK1"
    );
    // rport asked: received always, rport filled, stale received replaced.
    assert_eq!(
        stamped(
            "SIP/2.0/TCP 10.1.1.1:5070;received=1.1.1.1;rport;branch=z9hG4bK2",
            "203.0.113.5:61000"
        ),
        "SIP/2.0/TCP 10.1.1.1:5070;branch=z9hG4bK2;received=203.0.113.5;rport=61000"
    );
    // IPv6 source, second Via kept verbatim.
    assert_eq!(
        stamped("SIP/2.0/UDP [2001:db8::1];branch=z9hG4bK3 , SIP/2.0/UDP p;branch=z9hG4bK0", "[2001:db8::2]:5062"),
        "SIP/2.0/UDP [2001:db8::1];branch=z9hG4bK3;received=2001:db8::2, SIP/2.0/UDP p;branch=z9hG4bK0"
    );
}

#[test]
fn stamp_received_without_via_is_a_no_op() {
    let b = MessageBuilder::response(200, "OK").stamp_received("192.0.2.1:5060".parse().unwrap());
    assert_eq!(
        b.build().unwrap(),
        MessageBuilder::response(200, "OK").build().unwrap()
    );
}

#[test]
fn requests_with_unreadable_from_to_or_cseq_still_get_their_400() {
    for (bad, reason) in [
        ("CSeq: x INVITE", "CSeq"),
        ("To: <sip:b@h", "To"),
        ("From: not an address <", "From"),
    ] {
        let raw = "INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP p;branch=z9hG4bK1\r\n\
             From: <sip:a@h>;tag=9\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n";
        let header = bad.split(':').next().unwrap();
        let raw = raw
            .lines()
            .map(|l| {
                if l.starts_with(&format!("{header}:")) {
                    bad.to_owned()
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\r\n")
            + "\r\n";
        let req = Message::parse(raw.as_bytes()).unwrap();
        let err = req.validate().unwrap_err();
        let resp = MessageBuilder::error_response(&req, &err).expect(reason);
        let resp = Message::parse(&resp).unwrap();
        assert_eq!(resp.status(), Some(400), "{reason}");
        // The broken header comes back verbatim, so the client can match it.
        assert!(
            resp.headers()
                .iter()
                .any(|h| h.value() == bad.split_once(": ").unwrap().1),
            "{reason}"
        );
        assert_eq!(resp.call_id().unwrap(), "c");
    }
}

#[test]
fn header_values_refuse_every_control_byte_but_tab_and_folds() {
    for c in (0u8..0x20).chain([0x7f]) {
        let v = format!("a{}b", char::from(c));
        assert_eq!(valid_value(&v), c == b'\t', "byte {c:#04x}");
    }
    assert!(valid_value(
        "plain value, with punctuation: <sip:x@h>;tag=1"
    ));
    assert!(valid_value("folded\r\n continued"));
    assert!(valid_value("folded\r\n\tcontinued"));
    assert!(!valid_value("not folded\r\ncontinued"));
    assert!(!valid_value("ends in CR\r"));
    assert!(!valid_value("fold then NUL\r\n \0"));
}

#[test]
fn body_replaces_a_content_type_however_it_was_added() {
    let src = parse(b"MESSAGE sip:a@b SIP/2.0\r\nContent-Type: text/plain\r\n\r\n");
    let built = [
        MessageBuilder::request(Method::Message, "sip:a@b").header("Content-Type", "text/plain"),
        MessageBuilder::request(Method::Message, "sip:a@b").header("c", "text/plain"),
        MessageBuilder::request(Method::Message, "sip:a@b")
            .header_parts("content-type", &["text/", "plain"]),
        MessageBuilder::request(Method::Message, "sip:a@b")
            .copy_headers(&src, &[HeaderName::ContentType]),
        MessageBuilder::response(200, "OK")
            .header("Content-Type", "text/plain")
            .with_status(202, "Accepted"),
    ];
    for b in built {
        let out = b
            .body_owned("text/html", b"<b>x</b>".to_vec())
            .build()
            .unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(!text.contains("text/plain"), "{text}");
        let m = parse(&out);
        assert!(
            m.content_type().unwrap().unwrap().is("text", "html"),
            "{text}"
        );
        assert_eq!(m.body(), b"<b>x</b>");
    }
}
