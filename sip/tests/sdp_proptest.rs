//! Property tests for the SDP parser and serializer: generated descriptions
//! survive serialize → parse unchanged, anything the parser accepts is a
//! fixpoint of parse → serialize → parse, and arbitrary bytes never panic.

#![allow(clippy::unwrap_used)]

use maskline_sip::sdp::{
    Attribute, Bandwidth, Connection, Media, MediaDescription, Origin, SdpLimits, SdpLine,
    SessionDescription, Timing,
};
use proptest::prelude::*;

/// A field without whitespace or control characters.
fn token() -> impl Strategy<Value = String> {
    "[!-~é€]{1,12}"
}

/// A text value: may hold inner spaces, never ends in whitespace.
fn text() -> impl Strategy<Value = String> {
    prop_oneof!["", "[!-~é]([ -~é]{0,20}[!-~é])?"]
}

fn origin() -> impl Strategy<Value = Origin> {
    (
        token(),
        "[0-9]{1,20}",
        "[0-9]{1,20}",
        token(),
        token(),
        token(),
    )
        .prop_map(
            |(username, session_id, session_version, net_type, addr_type, address)| Origin {
                username,
                session_id,
                session_version,
                net_type,
                addr_type,
                address,
            },
        )
}

fn attribute() -> impl Strategy<Value = Attribute> {
    ("[!-9;-~]{1,12}", proptest::option::of(text()))
        .prop_map(|(name, value)| Attribute { name, value })
}

fn line() -> impl Strategy<Value = SdpLine> {
    prop_oneof![
        origin().prop_map(SdpLine::Origin),
        text().prop_map(SdpLine::SessionName),
        text().prop_map(SdpLine::Information),
        text().prop_map(SdpLine::Uri),
        text().prop_map(SdpLine::Email),
        text().prop_map(SdpLine::Phone),
        (token(), token(), token()).prop_map(|(net_type, addr_type, address)| {
            SdpLine::Connection(Connection {
                net_type,
                addr_type,
                address,
            })
        }),
        ("[!-9;-~]{1,8}", any::<u64>())
            .prop_map(|(bwtype, bandwidth)| SdpLine::Bandwidth(Bandwidth { bwtype, bandwidth })),
        (any::<u64>(), any::<u64>())
            .prop_map(|(start, stop)| SdpLine::Timing(Timing { start, stop })),
        text().prop_map(SdpLine::Repeat),
        text().prop_map(SdpLine::TimeZones),
        text().prop_map(SdpLine::Key),
        attribute().prop_map(SdpLine::Attribute),
        ("[dfghjlnqwxyA-Z]", text()).prop_map(|(k, value)| SdpLine::Other {
            kind: k.chars().next().unwrap(),
            value
        }),
    ]
}

fn media() -> impl Strategy<Value = MediaDescription> {
    (
        token(),
        any::<u16>(),
        proptest::option::of(any::<u16>()),
        token(),
        proptest::collection::vec(token(), 0..6),
        proptest::collection::vec(line(), 0..8),
    )
        .prop_map(
            |(media, port, num_ports, proto, formats, lines)| MediaDescription {
                media: Media {
                    media,
                    port,
                    num_ports,
                    proto,
                    formats,
                },
                lines,
            },
        )
}

fn session() -> impl Strategy<Value = SessionDescription> {
    (
        proptest::collection::vec(line(), 0..10),
        proptest::collection::vec(media(), 0..4),
    )
        .prop_map(|(lines, media)| SessionDescription { lines, media })
}

/// Lines that look like SDP, including broken ones, for the fixpoint test.
fn sdp_like_body() -> impl Strategy<Value = String> {
    let l = prop_oneof![
        "[a-z]=[ -~]{0,30}",
        "o=[ -~]{0,40}",
        "m=[a-z]{1,5} [0-9/]{1,7} [A-Z/]{1,8}( [0-9]{1,3}){0,4}",
        "c=IN IP[46] [0-9.:]{1,15}",
        "a=[a-z]{1,8}(:[ -~]{0,20})?",
        "[ -~]{0,10}",
    ];
    (
        proptest::collection::vec(l, 0..25),
        prop_oneof!["\r\n", "\n"],
    )
        .prop_map(|(lines, eol)| {
            let mut s = format!("v=0{eol}");
            for l in lines {
                s.push_str(&l);
                s.push_str(&eol);
            }
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn generated_descriptions_round_trip(sdp in session()) {
        let text = sdp.to_string();
        let limits = SdpLimits { max_formats: 64, ..SdpLimits::default() };
        let parsed = SessionDescription::parse_with_limits(text.as_bytes(), &limits);
        prop_assert_eq!(parsed, Ok(sdp));
    }

    #[test]
    fn accepted_input_is_a_fixpoint(body in sdp_like_body()) {
        if let Ok(first) = SessionDescription::parse(body.as_bytes()) {
            let text = first.to_string();
            let second = SessionDescription::parse(text.as_bytes()).unwrap();
            prop_assert_eq!(&second.to_string(), &text);
            prop_assert_eq!(second, first);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = SessionDescription::parse(&bytes);
        let mut prefixed = b"v=0\r\n".to_vec();
        prefixed.extend_from_slice(&bytes);
        if let Ok(sdp) = SessionDescription::parse(&prefixed) {
            let again = SessionDescription::parse(sdp.to_string().as_bytes()).unwrap();
            prop_assert_eq!(again, sdp);
        }
    }

    #[test]
    fn tight_limits_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..256),
        max_size in 0usize..300,
        max_lines in 0usize..8,
        max_media in 0usize..3,
        max_formats in 0usize..3,
    ) {
        let limits = SdpLimits { max_size, max_lines, max_media, max_formats };
        let _ = SessionDescription::parse_with_limits(&bytes, &limits);
    }
}
