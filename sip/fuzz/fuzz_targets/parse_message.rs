//! Fuzz target: arbitrary bytes into the SIP message parser, validator,
//! typed accessors and stream framer. Nothing may panic, and whatever the
//! parser accepts must survive serialize → parse unchanged.
//! Crashes found here go into `sip/tests/corpus/invalid/` (or `valid/`),
//! which runs as a normal test.
//! Run: `cd sip/fuzz && cargo +nightly fuzz run parse_message corpus/parse_message ../tests/corpus/valid ../tests/corpus/invalid`
//! (new inputs go to the first, git-ignored directory).

#![no_main]

use libfuzzer_sys::fuzz_target;
use maskline_sip::{Frame, Framer, Limits, Message, MessageBuilder};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::parse(data) {
        let _ = m.validate();
        let _ = m.request_uri();
        let _ = m.vias().count();
        let _ = m.from().map(|a| (a.tag(), a.display_name()));
        let _ = m.to();
        let _ = m.call_id();
        let _ = m.cseq();
        let _ = m.max_forwards();
        let _ = m.contacts().count();
        let _ = m.record_routes().count();
        let _ = m.p_asserted_identities().count();
        let _ = m.diversions().count();
        let _ = m.history_info().count();
        let _ = m.privacy();
        for r in m.reasons().flatten() {
            let _ = r.text();
        }
        let _ = m.content_type();
        let bytes = m.to_bytes();
        match Message::parse(&bytes) {
            Ok(again) => assert_eq!(again, m),
            Err(e) => panic!("serialized message does not reparse: {e}"),
        }
        if m.is_request() {
            if let Ok(b) = MessageBuilder::response_to(&m, 400, "Bad Request", Some("t")) {
                if let Ok(out) = b.build() {
                    assert!(Message::parse(&out).is_ok(), "built response does not parse");
                }
            }
        }
    }
    // The same bytes as a stream, in uneven reads.
    let limits = Limits { max_message_size: 4096, ..Limits::DEFAULT };
    let mut f = Framer::new(limits);
    for chunk in data.chunks(13) {
        if f.push(chunk).is_err() {
            break;
        }
        assert!(f.buffered() <= 2 * limits.max_message_size);
        while let Ok(Some(frame)) = f.next_frame() {
            if let Frame::Message(m) = frame {
                assert!(m.len() <= limits.max_message_size);
            }
        }
    }
});
