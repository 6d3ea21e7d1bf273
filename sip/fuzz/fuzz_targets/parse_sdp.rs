//! Fuzz target: arbitrary bytes into the SDP parser. Nothing may panic, and
//! whatever the parser accepts must survive serialize → parse unchanged.
//! Crashes found here go into `sip/tests/sdp_corpus/`, which runs as a test.
//! Run: `cd sip/fuzz && cargo +nightly fuzz run parse_sdp corpus/parse_sdp ../tests/sdp_corpus`
//! (new inputs go to the first, git-ignored directory).

#![no_main]

use libfuzzer_sys::fuzz_target;
use maskline_sip::sdp::SessionDescription;

fuzz_target!(|data: &[u8]| {
    if let Ok(sdp) = SessionDescription::parse(data) {
        let text = sdp.to_string();
        match SessionDescription::parse(text.as_bytes()) {
            Ok(again) => assert_eq!(again, sdp),
            Err(e) => panic!("serialized SDP does not reparse: {e}"),
        }
    }
});
