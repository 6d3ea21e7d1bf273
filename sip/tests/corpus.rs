//! Runs every file of `tests/corpus/` through the parser.
//!
//! `valid/` messages must parse, validate and round-trip; `invalid/`
//! messages must fail with the typed error listed in `EXPECTED` (every file
//! must be listed, so a new corpus file cannot be silently ignored). The
//! same directories seed the `parse_message` fuzz target.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use maskline_sip::{Frame, Framer, Message, ParseError};

fn files(dir: &str) -> BTreeMap<String, Vec<u8>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(dir);
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(&path).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        out.insert(name, fs::read(entry.path()).unwrap());
    }
    assert!(!out.is_empty(), "no corpus files in {}", path.display());
    out
}

fn parse_and_validate(raw: &[u8]) -> Result<Message<'_>, ParseError> {
    let m = Message::parse(raw)?;
    m.validate()?;
    Ok(m)
}

#[test]
fn valid_corpus_parses_validates_and_round_trips() {
    for (name, raw) in files("valid") {
        let m = parse_and_validate(&raw).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let once = m.to_bytes();
        let again = Message::parse(&once).unwrap_or_else(|e| panic!("{name} reparse: {e:?}"));
        assert_eq!(again, m, "{name}: parse(serialize(m)) != m");
        assert_eq!(again.to_bytes(), once, "{name}: serialization not stable");
        again.validate().unwrap();
        // Typed access on every corpus message.
        let via = m.top_via().unwrap();
        assert!(!via.host_str().is_empty(), "{name}");
        m.from().unwrap();
        m.to().unwrap();
        assert!(!m.call_id().unwrap().is_empty());
        m.cseq().unwrap();
    }
}

#[test]
fn valid_corpus_frames_on_a_stream() {
    // Every valid message that carries a Content-Length, sent back to back on
    // one stream in 7-byte reads, comes out as the same messages.
    let mut stream = Vec::new();
    let mut expected = Vec::new();
    for (_, raw) in files("valid") {
        let m = Message::parse(&raw).unwrap();
        if m.content_length().is_none() {
            continue;
        }
        let bytes = m.to_bytes();
        stream.extend_from_slice(&bytes);
        stream.extend_from_slice(b"\r\n\r\n");
        expected.push(bytes);
    }
    let mut f = Framer::default();
    let mut got = Vec::new();
    let mut pings = 0;
    for chunk in stream.chunks(7) {
        f.push(chunk).unwrap();
        while let Some(frame) = f.next_frame().unwrap() {
            match frame {
                Frame::Message(m) => got.push(m),
                Frame::Ping => pings += 1,
                Frame::Pong => panic!("unexpected pong"),
            }
        }
    }
    assert_eq!(got, expected);
    assert_eq!(pings, expected.len());
}

const EXPECTED: &[(&str, ParseError)] = &[
    ("atypical-scheme.sip", ParseError::UnsupportedUriScheme),
    ("bad-contact.sip", ParseError::UnterminatedQuote),
    ("bad-from-uri.sip", ParseError::InvalidHeader("From")),
    ("bad-ipv6-request-uri.sip", ParseError::InvalidRequestUri),
    ("bad-status-code.sip", ParseError::InvalidStatusCode),
    ("bad-utf8.sip", ParseError::InvalidEncoding),
    ("bad-version.sip", ParseError::InvalidVersion),
    ("bad-via.sip", ParseError::InvalidHeader("Via")),
    ("bare-lf.sip", ParseError::InvalidEncoding),
    (
        "call-id-with-space.sip",
        ParseError::InvalidHeader("Call-ID"),
    ),
    (
        "contact-addr-spec-with-headers.sip",
        ParseError::InvalidHeader("Contact"),
    ),
    (
        "content-length-huge.sip",
        ParseError::BodyTooLarge { limit: 32 * 1024 },
    ),
    (
        "content-length-multiple.sip",
        ParseError::DuplicateHeader("Content-Length"),
    ),
    (
        "content-length-negative.sip",
        ParseError::InvalidContentLength,
    ),
    (
        "content-length-overflow.sip",
        ParseError::InvalidContentLength,
    ),
    ("content-length-too-big.sip", ParseError::BodyTruncated),
    ("continuation-first.sip", ParseError::InvalidHeaderLine),
    ("cseq-method-mismatch.sip", ParseError::CSeqMethodMismatch),
    ("cseq-missing-method.sip", ParseError::InvalidHeader("CSeq")),
    ("cseq-not-numeric.sip", ParseError::InvalidHeader("CSeq")),
    ("cseq-overflow.sip", ParseError::InvalidHeader("CSeq")),
    (
        "duplicate-call-id.sip",
        ParseError::DuplicateHeader("Call-ID"),
    ),
    ("empty.sip", ParseError::Empty),
    (
        "header-line-too-long.sip",
        ParseError::HeaderLineTooLong { limit: 8 * 1024 },
    ),
    ("header-without-colon.sip", ParseError::InvalidHeaderLine),
    ("max-forwards-negative.sip", ParseError::InvalidMaxForwards),
    ("max-forwards-overflow.sip", ParseError::InvalidMaxForwards),
    ("missing-call-id.sip", ParseError::MissingHeader("Call-ID")),
    ("missing-cseq.sip", ParseError::MissingHeader("CSeq")),
    ("missing-from.sip", ParseError::MissingHeader("From")),
    ("missing-to.sip", ParseError::MissingHeader("To")),
    ("missing-via.sip", ParseError::MissingHeader("Via")),
    ("nul-in-header.sip", ParseError::InvalidEncoding),
    ("only-crlf.sip", ParseError::Empty),
    ("overlarge-status-code.sip", ParseError::InvalidStatusCode),
    ("quoted-pair-raw-controls.sip", ParseError::InvalidEncoding),
    ("request-line-extra-token.sip", ParseError::InvalidStartLine),
    ("request-line-spaces.sip", ParseError::InvalidStartLine),
    (
        "request-line-trailing-spaces.sip",
        ParseError::InvalidStartLine,
    ),
    ("request-uri-in-angles.sip", ParseError::InvalidRequestUri),
    (
        "request-uri-with-headers.sip",
        ParseError::InvalidRequestUri,
    ),
    ("request-uri-with-spaces.sip", ParseError::InvalidStartLine),
    (
        "response-cseq-overflow.sip",
        ParseError::InvalidHeader("CSeq"),
    ),
    ("spaces-in-addr-spec.sip", ParseError::InvalidHeader("From")),
    (
        "too-many-headers.sip",
        ParseError::TooManyHeaders { limit: 128 },
    ),
    ("too-many-vias.sip", ParseError::TooManyVias { limit: 70 }),
    ("unknown-scheme.sip", ParseError::UnsupportedUriScheme),
    ("unterminated-angle.sip", ParseError::UnterminatedAngle),
    ("unterminated-headers.sip", ParseError::UnterminatedHeaders),
    (
        "unquoted-display-name-comma.sip",
        ParseError::InvalidHeader("From"),
    ),
    ("unterminated-quote.sip", ParseError::UnterminatedQuote),
];

#[test]
fn invalid_corpus_fails_with_typed_errors() {
    let expected: BTreeMap<_, _> = EXPECTED.iter().copied().collect();
    for (name, raw) in files("invalid") {
        let want = expected
            .get(name.as_str())
            .unwrap_or_else(|| panic!("{name} is not listed in EXPECTED"));
        let got = parse_and_validate(&raw).err();
        assert_eq!(got.as_ref(), Some(want), "{name}");
        // Every error has a reason phrase without input bytes.
        assert!(want.reason_phrase().is_ascii());
        assert!((400..=599).contains(&want.status_code()));
    }
    assert_eq!(
        files("invalid").len(),
        EXPECTED.len(),
        "EXPECTED lists a missing file"
    );
}

#[test]
fn torture_message_typed_values() {
    let all = files("valid");
    let raw = &all["torture-wsinv.sip"];
    let m = Message::parse(raw).unwrap();
    assert_eq!(m.to().unwrap().tag(), Some("1918181833n"));
    let from = m.from().unwrap();
    assert_eq!(from.display_name().as_deref(), Some("J Rosenberg \\\""));
    assert_eq!(from.tag(), Some("98asjd8"));
    assert_eq!(m.max_forwards().unwrap(), Some(68));
    assert_eq!(m.cseq().unwrap().seq, 9);
    let branches: Vec<_> = m.vias().map(|v| v.unwrap().branch().unwrap()).collect();
    assert_eq!(branches, ["390skdjuw", "z9hG4bK9ikj8", "z9hG4bK30239"]);
    let vias: Vec<_> = m.vias().map(|v| v.unwrap().transport()).collect();
    assert_eq!(vias, ["UDP", "TCP", "UDP"]);
    let contact = m.contacts().next().unwrap().unwrap();
    let addr = contact.addr().unwrap();
    assert_eq!(addr.display_name().as_deref(), Some("Quoted string \"\""));
    assert_eq!(addr.params().value("q"), Some("0.33"));
    assert_eq!(addr.params().value("newparam"), Some("newvalue"));
    assert!(addr.params().has("secondparam"));
    assert_eq!(
        m.header("NewFangledHeader"),
        Some("newfangled value\r\n continued newfangled value")
    );
    assert_eq!(m.header("Subject"), Some(""));
    assert_eq!(m.body().len(), 150);

    let raw = &all["escaped-null.sip"];
    let m = Message::parse(raw).unwrap();
    assert_eq!(m.to().unwrap().uri().user(), Some("null-%00-null"));
    assert_eq!(m.contacts().count(), 2);
    assert_eq!(m.content_length(), Some(0));

    let raw = &all["two-requests-one-datagram.sip"];
    let m = Message::parse(raw).unwrap();
    assert_eq!(m.method(), Some(maskline_sip::Method::Options));
    assert!(m.body().is_empty());
}
