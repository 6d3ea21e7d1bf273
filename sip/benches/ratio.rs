//! Interleaved A/B timing of our parser against rsipstack's on the same
//! bytes. On a shared, loaded machine criterion's back-to-back groups see
//! different load; here both parsers run in alternating short rounds and
//! the minimum and median round are reported, so the ratio is stable even
//! when absolute times are not.
//!
//! Run: `cargo bench -p maskline-sip --bench ratio`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Instant;

use maskline_sip::Message;
use rsipstack::sip::headers::untyped::ToTypedHeader;
use rsipstack::sip::{HeadersExt, SipMessage};

const INVITE: &[u8] = include_bytes!("../tests/corpus/valid/carrier-invite.sip");
const OK: &[u8] = include_bytes!("../tests/corpus/valid/rfc3261-f9-200ok.sip");

fn ours_typed(raw: &[u8]) -> usize {
    let m = Message::parse(raw).unwrap();
    let n = m.top_via().unwrap().branch().unwrap().len()
        + m.from().unwrap().tag().unwrap_or("").len()
        + m.to().unwrap().tag().unwrap_or("").len()
        + m.call_id().unwrap().len()
        + m.cseq().unwrap().seq as usize
        + m.contacts().filter(Result::is_ok).count();
    n + match m.content_type() {
        Some(Ok(ct)) if ct.is("application", "sdp") => m.body().len(),
        _ => 0,
    }
}

fn rsip_typed(raw: &[u8]) -> usize {
    let m = SipMessage::try_from(raw).unwrap();
    let via = m.top_via_header().unwrap().typed().unwrap();
    let n = via.branch().map_or(0, |b| b.value().len())
        + m.from_header()
            .unwrap()
            .tag()
            .unwrap()
            .map_or(0, |t| t.value().len())
        + m.to_header()
            .unwrap()
            .tag()
            .unwrap()
            .map_or(0, |t| t.value().len())
        + m.call_id_header().unwrap().value().len()
        + m.cseq_header().unwrap().seq().unwrap() as usize
        + m.typed_contact_headers().unwrap().len();
    n + match &m {
        SipMessage::Request(r) => r.body().len(),
        SipMessage::Response(r) => r.body().len(),
    }
}

/// Nanoseconds per call over one round of `iters` calls.
fn round(f: fn(&[u8]) -> usize, raw: &[u8], iters: u32) -> f64 {
    let t = Instant::now();
    let mut acc = 0usize;
    for _ in 0..iters {
        acc = acc.wrapping_add(f(black_box(raw)));
    }
    black_box(acc);
    t.elapsed().as_nanos() as f64 / f64::from(iters)
}

fn stats(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2])
}

fn compare(name: &str, raw: &[u8], a: fn(&[u8]) -> usize, b: fn(&[u8]) -> usize) {
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    for _ in 0..150 {
        ta.push(round(a, raw, 2000));
        tb.push(round(b, raw, 500));
    }
    let (amin, amed) = stats(ta);
    let (bmin, bmed) = stats(tb);
    println!(
        "{name:<34} maskline min {amin:7.0} ns  median {amed:7.0} ns | rsipstack min {bmin:7.0} ns  median {bmed:7.0} ns | ratio min {:.1}x  median {:.1}x",
        bmin / amin,
        bmed / amed
    );
}

fn ours_frame(raw: &[u8]) -> usize {
    Message::parse(raw).unwrap().headers().len()
}

fn rsip_frame(raw: &[u8]) -> usize {
    usize::from(SipMessage::try_from(raw).unwrap().is_request())
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to configure.
    assert_eq!(ours_typed(INVITE), rsip_typed(INVITE), "parsers disagree");
    compare("parse INVITE + typed reads", INVITE, ours_typed, rsip_typed);
    compare("parse INVITE, framing only", INVITE, ours_frame, rsip_frame);
    compare("parse 200 OK + typed reads", OK, ours_typed, rsip_typed);
    compare("parse 200 OK, framing only", OK, ours_frame, rsip_frame);
}
