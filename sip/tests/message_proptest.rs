//! Property tests of the message layer: generated messages round-trip and
//! keep their typed values; arbitrary or mutated bytes never panic the
//! parser, the validator, the typed accessors or the stream framer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use maskline_sip::transaction::RequestInfo;
use maskline_sip::{Frame, Framer, HeaderName, Limits, Message, MessageBuilder};
use proptest::prelude::*;

const METHODS: &[&str] = &[
    "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "X-EXT",
];

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9.!%*_+`'~-]{0,15}"
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,10}(\\.[a-z][a-z0-9-]{0,10}){0,3}",
        (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>())
            .prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
        any::<[u16; 8]>().prop_map(|s| format!("[{}]", std::net::Ipv6Addr::from(s))),
    ]
}

fn sip_uri() -> impl Strategy<Value = String> {
    (
        prop::option::of("[a-zA-Z0-9+%_.-]{1,12}"),
        host(),
        prop::option::of(1u16..),
        prop::collection::vec(token(), 0..3),
    )
        .prop_map(|(user, host, port, params)| {
            let mut s = String::from("sip:");
            if let Some(u) = user {
                s.push_str(&u);
                s.push('@');
            }
            s.push_str(&host);
            if let Some(p) = port {
                s.push_str(&format!(":{p}"));
            }
            for p in params {
                s.push(';');
                s.push_str(&p);
            }
            s
        })
}

fn display_name() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        token(),
        // Quoted with escapes, commas, angle brackets, UTF-8.
        "[ a-zA-Z0-9,<>;:@é\"\\\\]{0,16}".prop_map(|s| {
            let mut q = String::from("\"");
            for c in s.chars() {
                if c == '"' || c == '\\' {
                    q.push('\\');
                }
                q.push(c);
            }
            q.push('"');
            q
        }),
    ])
}

#[derive(Debug, Clone)]
struct Gen {
    method: &'static str,
    uri: String,
    vias: Vec<(String, String)>,
    from: (Option<String>, String, String),
    to: (Option<String>, String, Option<String>),
    call_id: String,
    seq: u32,
    extra: Vec<(String, String)>,
    fold: bool,
    compact: bool,
    body: Vec<u8>,
}

fn gen() -> impl Strategy<Value = Gen> {
    (
        prop::sample::select(METHODS),
        sip_uri(),
        prop::collection::vec((host(), "[a-zA-Z0-9]{1,20}"), 1..5),
        (display_name(), sip_uri(), token()),
        (display_name(), sip_uri(), prop::option::of(token())),
        "[a-zA-Z0-9.!%*_+`'~()<>:\\\\\"/\\[\\]?{}-]{1,30}(@[a-z0-9.]{1,12})?",
        0u32..(1 << 31),
        prop::collection::vec(("X-[A-Za-z0-9-]{1,10}", "[ -~]{0,40}"), 0..6),
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(
            |(method, uri, vias, from, to, call_id, seq, extra, fold, compact, body)| Gen {
                method,
                uri,
                vias: vias
                    .into_iter()
                    .map(|(h, b)| (h, format!("z9hG4bK{b}")))
                    .collect(),
                from,
                to,
                call_id,
                seq,
                extra,
                fold,
                compact,
                body,
            },
        )
}

fn addr(display: &Option<String>, uri: &str, tag: Option<&str>) -> String {
    let mut s = String::new();
    if let Some(d) = display {
        s.push_str(d);
        s.push(' ');
    }
    s.push('<');
    s.push_str(uri);
    s.push('>');
    if let Some(t) = tag {
        s.push_str(";tag=");
        s.push_str(t);
    }
    s
}

fn render(g: &Gen) -> Vec<u8> {
    let name = |long: &'static str, short: &'static str| if g.compact { short } else { long };
    let mut s = format!("{} {} SIP/2.0\r\n", g.method, g.uri);
    for (h, b) in &g.vias {
        let sep = if g.fold { "\r\n " } else { "" };
        s.push_str(&format!(
            "{}: SIP/2.0/UDP {h};{sep}branch={b}\r\n",
            name("Via", "v")
        ));
    }
    s.push_str(&format!(
        "{}: {}\r\n",
        name("From", "f"),
        addr(&g.from.0, &g.from.1, Some(&g.from.2))
    ));
    s.push_str(&format!(
        "{}: {}\r\n",
        name("To", "t"),
        addr(&g.to.0, &g.to.1, g.to.2.as_deref())
    ));
    s.push_str(&format!("{}: {}\r\n", name("Call-ID", "i"), g.call_id));
    s.push_str(&format!("CSeq: {} {}\r\n", g.seq, g.method));
    s.push_str("Max-Forwards: 70\r\n");
    for (n, v) in &g.extra {
        s.push_str(&format!("{n}: {}\r\n", v.trim()));
    }
    s.push_str(&format!(
        "{}: {}\r\n\r\n",
        name("Content-Length", "l"),
        g.body.len()
    ));
    let mut out = s.into_bytes();
    out.extend_from_slice(&g.body);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn generated_messages_round_trip(g in gen()) {
        let raw = render(&g);
        let m = Message::parse(&raw).unwrap();
        m.validate().unwrap();
        prop_assert_eq!(m.method().unwrap().as_str(), g.method);
        prop_assert_eq!(m.request_line().unwrap().uri, g.uri.as_str());
        prop_assert_eq!(m.call_id().unwrap(), g.call_id.as_str());
        prop_assert_eq!(m.cseq().unwrap().seq, g.seq);
        prop_assert_eq!(m.from().unwrap().tag(), Some(g.from.2.as_str()));
        prop_assert_eq!(m.to().unwrap().tag(), g.to.2.as_deref());
        prop_assert_eq!(m.from().unwrap().uri().as_str(), g.from.1.as_str());
        let branches: Vec<_> = m.vias().map(|v| v.unwrap().branch().unwrap().to_owned()).collect();
        let want: Vec<_> = g.vias.iter().map(|v| v.1.clone()).collect();
        prop_assert_eq!(branches, want);
        prop_assert_eq!(m.body(), &g.body[..]);
        for (n, v) in &g.extra {
            prop_assert!(m.headers().iter().any(|h| h.name() == n && h.value() == v.trim()));
        }
        // serialize(parse(x)) parses to the same message, and is a fixpoint.
        let once = m.to_bytes();
        let again = Message::parse(&once).unwrap();
        prop_assert_eq!(&again, &m);
        prop_assert_eq!(again.to_bytes(), once);
        // The transaction layer's quick read of a request agrees with the parser.
        let full = RequestInfo::from_message(&m).unwrap();
        prop_assert_eq!(RequestInfo::from_bytes(&raw).unwrap(), full);
        // A response built from it is itself valid.
        let resp = MessageBuilder::response_to(&m, 200, "OK", Some("t")).unwrap().build().unwrap();
        let resp = Message::parse(&resp).unwrap();
        resp.validate().unwrap();
        prop_assert_eq!(resp.call_id().unwrap(), g.call_id.as_str());
        prop_assert_eq!(resp.vias().count(), g.vias.len());
    }

    #[test]
    fn generated_messages_survive_stream_framing(gs in prop::collection::vec(gen(), 1..4), chunk in 1usize..64) {
        let mut stream = Vec::new();
        let raws: Vec<_> = gs.iter().map(render).collect();
        for r in &raws {
            stream.extend_from_slice(r);
        }
        let mut f = Framer::default();
        let mut got = Vec::new();
        for c in stream.chunks(chunk) {
            f.push(c).unwrap();
            while let Some(fr) = f.next_frame().unwrap() {
                if let Frame::Message(m) = fr { got.push(m) }
            }
        }
        prop_assert_eq!(got, raws);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        exercise(&data);
    }

    #[test]
    fn sip_shaped_noise_never_panics(data in "[A-Za-z0-9 :;,<>\"\\\\@=/.\\[\\]\r\n\t%-]{0,600}") {
        let mut raw = b"INVITE sip:a@b SIP/2.0\r\n".to_vec();
        raw.extend_from_slice(data.as_bytes());
        raw.extend_from_slice(b"\r\n\r\n");
        exercise(&raw);
    }

    #[test]
    fn mutated_messages_never_panic(g in gen(), edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8)) {
        let mut raw = render(&g);
        for (at, byte, op) in edits {
            if raw.is_empty() { break; }
            let i = at.index(raw.len());
            match op {
                0 => raw[i] = byte,
                1 => raw.insert(i, byte),
                _ => { raw.remove(i); }
            }
        }
        exercise(&raw);
    }

    #[test]
    fn framer_never_panics_and_stays_bounded(data in prop::collection::vec(any::<u8>(), 0..4096), chunk in 1usize..512) {
        let limits = Limits { max_message_size: 1024, ..Limits::DEFAULT };
        let mut f = Framer::new(limits);
        for c in data.chunks(chunk) {
            if f.push(c).is_err() { break; }
            prop_assert!(f.buffered() <= 2 * limits.max_message_size);
            loop {
                match f.next_frame() {
                    Ok(Some(Frame::Message(m))) => {
                        prop_assert!(m.len() <= limits.max_message_size);
                        exercise(&m);
                    }
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }
}

/// Runs every entry point on `data`; any panic fails the property.
fn exercise(data: &[u8]) {
    let m = match Message::parse(data) {
        Ok(m) => m,
        Err(e) => {
            // Whatever it answers must parse.
            if let Ok(out) = MessageBuilder::error_response_to_datagram(data, &e) {
                Message::parse(&out).unwrap();
            }
            return;
        }
    };
    let _ = m.validate();
    // Whenever both read a request, the quick read agrees with the parser.
    if let (Ok(quick), Ok(full)) = (RequestInfo::from_bytes(data), RequestInfo::from_message(&m)) {
        assert_eq!(quick, full);
    }
    let _ = m.request_uri();
    let _ = m.top_via();
    let _ = m.vias().count();
    let _ = m
        .from()
        .map(|a| (a.tag(), a.display_name(), a.uri().host()));
    let _ = m.to();
    let _ = m.call_id();
    let _ = m.cseq();
    let _ = m.max_forwards();
    let _ = m.contacts().count();
    let _ = m.routes().count();
    let _ = m.p_asserted_identities().count();
    let _ = m.history_info().count();
    let _ = m.privacy();
    for r in m.reasons().flatten() {
        let _ = (r.cause(), r.text());
    }
    let _ = m.content_type();
    for h in m.headers() {
        let _ = m.values(h.kind()).count();
        if h.kind() == HeaderName::Other {
            let _ = m.header(h.name());
        }
    }
    let again = m.to_bytes();
    let re = Message::parse(&again).unwrap();
    assert_eq!(re, m, "round trip changed the message");
    if m.is_request() {
        if let Ok(b) = MessageBuilder::response_to(&m, 400, "Bad Request", Some("t")) {
            let out = b.build().unwrap();
            Message::parse(&out).unwrap();
        }
        let _ = MessageBuilder::cancel_for(&m).map(|b| b.build());
    }
}
