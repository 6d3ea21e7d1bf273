//! Parses the carrier INVITE (or the 200 OK) N times with the bench's typed
//! reads, for instruction counting under callgrind (deterministic, unlike
//! wall-clock time on a shared machine):
//!
//! ```sh
//! cargo build --release -p maskline-sip --example parse_loop
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
//!     $CARGO_TARGET_DIR/release/examples/parse_loop invite typed 10000
//! ```
//!
//! Instructions per message = (total for N) − (total for 0), divided by N.

use std::hint::black_box;

use maskline_sip::Message;

const INVITE: &[u8] = include_bytes!("../tests/corpus/valid/carrier-invite.sip");
const OK: &[u8] = include_bytes!("../tests/corpus/valid/rfc3261-f9-200ok.sip");

fn typed(raw: &[u8]) -> usize {
    let Ok(m) = Message::parse(raw) else { return 0 };
    let n = m
        .top_via()
        .ok()
        .and_then(|v| v.branch())
        .map_or(0, str::len)
        + m.from().ok().and_then(|a| a.tag()).map_or(0, str::len)
        + m.to().ok().and_then(|a| a.tag()).map_or(0, str::len)
        + m.call_id().map_or(0, str::len)
        + m.cseq().map_or(0, |c| c.seq as usize)
        + m.contacts().filter(Result::is_ok).count();
    n + match m.content_type() {
        Some(Ok(ct)) if ct.is("application", "sdp") => m.body().len(),
        _ => 0,
    }
}

fn frame(raw: &[u8]) -> usize {
    Message::parse(raw).map_or(0, |m| m.headers().len())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let raw = match args.get(1).map(String::as_str) {
        Some("ok") => OK,
        _ => INVITE,
    };
    let f: fn(&[u8]) -> usize = match args.get(2).map(String::as_str) {
        Some("frame") => frame,
        _ => typed,
    };
    let n: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let mut acc = 0usize;
    for _ in 0..n {
        acc = acc.wrapping_add(f(black_box(raw)));
    }
    println!("{acc}");
}
