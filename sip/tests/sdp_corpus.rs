//! Runs the `parse_sdp` fuzz target's regression corpus as a normal test.
//!
//! Every file in `tests/sdp_corpus/` is parsed with the same checks as the
//! fuzz target (no panic; accepted input round-trips). Files named `ok-*`
//! must be accepted and files named `err-*` must be rejected; crash
//! reproducers found by fuzzing are added here under any other name.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use maskline_sip::sdp::SessionDescription;

/// The same checks as `fuzz/fuzz_targets/parse_sdp.rs`.
fn check(data: &[u8]) -> bool {
    match SessionDescription::parse(data) {
        Ok(sdp) => {
            let text = sdp.to_string();
            let again = SessionDescription::parse(text.as_bytes()).expect("reparse");
            assert_eq!(again, sdp);
            assert_eq!(again.to_string(), text);
            true
        }
        Err(_) => false,
    }
}

#[test]
fn sdp_regression_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdp_corpus");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let data = std::fs::read(&path).unwrap();
        let accepted = check(&data);
        if name.starts_with("ok-") {
            assert!(accepted, "{name} should parse");
        } else if name.starts_with("err-") {
            assert!(!accepted, "{name} should be rejected");
        }
        seen += 1;
    }
    assert!(seen >= 10, "corpus has only {seen} files");
}
