//! Parse and serialize benchmarks for the SIP message layer, with
//! rsipstack's parser on the same bytes in the same run for a ratio.
//!
//! Run: `cargo bench -p maskline-sip --bench parse -- --measurement-time 3`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use maskline_sip::{HeaderName, Message, MessageBuilder};
use rsipstack::sip::headers::untyped::ToTypedHeader;
use rsipstack::sip::{HeadersExt, SipMessage};

/// A 1.2 kB carrier INVITE: 18 headers (Via×2, Record-Route, PAI, Allow,
/// Supported, Session-Expires ...) and a 14-line SDP offer.
const INVITE: &[u8] = include_bytes!("../tests/corpus/valid/carrier-invite.sip");
/// A relayed 200 OK with SDP (RFC 3261 §24.2 F9 shape).
const OK: &[u8] = include_bytes!("../tests/corpus/valid/rfc3261-f9-200ok.sip");

/// What the relay reads from every INVITE: top branch, From/To tags,
/// Call-ID, CSeq, Contact URI and the SDP body.
fn ours_typed(raw: &[u8]) -> usize {
    let m = Message::parse(raw).unwrap();
    let via = m.top_via().unwrap();
    let from = m.from().unwrap();
    let to = m.to().unwrap();
    let call_id = m.call_id().unwrap();
    let cseq = m.cseq().unwrap();
    let contacts = m.contacts().filter(Result::is_ok).count();
    let sdp = match m.content_type() {
        Some(Ok(ct)) if ct.is("application", "sdp") => m.body(),
        _ => &[],
    };
    via.branch().unwrap().len()
        + from.tag().unwrap_or("").len()
        + to.tag().unwrap_or("").len()
        + call_id.len()
        + cseq.seq as usize
        + contacts
        + sdp.len()
}

/// The same reads through rsipstack.
fn rsip_typed(raw: &[u8]) -> usize {
    let m = SipMessage::try_from(raw).unwrap();
    let via = m.top_via_header().unwrap().typed().unwrap();
    let from_tag = m.from_header().unwrap().tag().unwrap();
    let to_tag = m.to_header().unwrap().tag().unwrap();
    let call_id = m.call_id_header().unwrap().value().len();
    let seq = m.cseq_header().unwrap().seq().unwrap();
    let contact = m.typed_contact_headers().unwrap();
    let body = match &m {
        SipMessage::Request(r) => r.body().len(),
        SipMessage::Response(r) => r.body().len(),
    };
    via.branch().map_or(0, |b| b.value().len())
        + from_tag.map_or(0, |t| t.value().len())
        + to_tag.map_or(0, |t| t.value().len())
        + call_id
        + seq as usize
        + contact.len()
        + body
}

fn parse(c: &mut Criterion) {
    assert_eq!(ours_typed(INVITE), rsip_typed(INVITE), "parsers disagree");
    for (name, raw) in [("invite", INVITE), ("200ok", OK)] {
        let mut g = c.benchmark_group(format!("parse/{name}"));
        g.throughput(Throughput::Bytes(raw.len() as u64));
        g.bench_function("maskline_frame_only", |b| {
            b.iter(|| Message::parse(black_box(raw)).unwrap().headers().len())
        });
        g.bench_function("maskline_typed", |b| b.iter(|| ours_typed(black_box(raw))));
        g.bench_function("rsipstack_frame_only", |b| {
            b.iter(|| SipMessage::try_from(black_box(raw)).unwrap().is_request())
        });
        g.bench_function("rsipstack_typed", |b| b.iter(|| rsip_typed(black_box(raw))));
        g.finish();
    }
}

fn serialize(c: &mut Criterion) {
    let mut g = c.benchmark_group("serialize");
    for (name, raw) in [("invite", INVITE), ("200ok", OK)] {
        let m = Message::parse(raw).unwrap();
        let mut buf = Vec::with_capacity(4096);
        g.bench_function(format!("{name}/maskline_write_to"), |b| {
            b.iter(|| {
                buf.clear();
                black_box(&m).write_to(&mut buf);
                buf.len()
            })
        });
        let theirs = SipMessage::try_from(raw).unwrap();
        g.bench_function(format!("{name}/rsipstack_to_bytes"), |b| {
            b.iter(|| black_box(&theirs).to_bytes().len())
        });
    }
    // Building the 200 OK answer to the INVITE from scratch (copy Via/From/
    // To/Call-ID/CSeq/Record-Route, add To-tag, Contact and SDP).
    let invite = Message::parse(INVITE).unwrap();
    let sdp = invite.body();
    g.bench_function("invite/build_200ok_response", |b| {
        b.iter(|| {
            MessageBuilder::response_to(black_box(&invite), 200, "OK", Some("8f3a21c9d0b7e6a5"))
                .unwrap()
                .header_kind(HeaderName::Contact, "<sip:relay.example.net:5060>")
                .body("application/sdp", sdp)
                .build()
                .unwrap()
                .len()
        })
    });
    g.finish();
}

criterion_group!(benches, parse, serialize);
criterion_main!(benches);
