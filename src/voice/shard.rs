//! Engine shards: several engine threads, each owning the calls it was given, so
//! call handling scales past one core without a lock on the call path, while a
//! lightly loaded relay keeps every call on one engine (no hand-off per message).
//!
//! Where a message goes is decided from what it carries:
//! - the B-leg dialogs we create carry their shard in their Call-ID
//!   ([`b_call_id`]);
//! - on the A leg, the tag we give the caller ([`a_tag`]) carries it: the To tag
//!   of every in-dialog request from the caller, the From tag of every response
//!   to a request we send the caller;
//! - what carries neither (a new INVITE, its retransmissions, its CANCEL) goes to
//!   shard 0 unless shard 0 *steered* that Call-ID to another shard, which it
//!   records in a short-lived table ([`Steering`]).
//!
//! Shard 0 keeps every new call while the engines together use less than
//! `sip.spread_from_pct` of a core (35 %) and spreads new calls round-robin over
//! all shards once two housekeeping periods in a row (1 s) reached it: at 2,000
//! calls/s two engines handing half the messages over cost 0.87-0.91x Kamailio's
//! CPU per call where one engine cost 0.62-0.70x (loadtest/README.md). It keeps
//! one engine again once the engines, spread, use less than 6/5 of the threshold:
//! spread, the same calls cost 1.2-1.5x the CPU (the hand-offs), so a lower bound
//! (it was 5/7) left every rate from about 1,450 to 2,850 calls/s spread for good
//! after one busy second, at 1.5x the CPU per call.
//!
//! The primary UDP socket and the other transports are read by shard 0, which
//! hands a message of another shard over that shard's queue without parsing it
//! (a scan of three headers); every shard sends on the shared sockets itself.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use maskline_sip::transaction::Transport;
use tokio::sync::mpsc;

use super::transport::Inbound;

/// Most engine threads (the shard is one hex digit of a B-leg Call-ID or A tag).
pub const MAX_ENGINES: usize = 16;

/// Housekeeping periods in a row at or above the threshold before new calls
/// are spread (one busy period, e.g. a burst, does not spread them).
const SPREAD_AFTER: u32 = 2;

/// State the shards share: live calls, load, and the steering table.
#[derive(Debug)]
pub struct Shared {
    /// Live calls per shard (for the `maskline_live_calls` gauge).
    live: Box<[AtomicUsize]>,
    /// Each shard's engine thread CPU over its last housekeeping period, in
    /// thousandths of a core.
    load: Box<[AtomicU32]>,
    /// Whether shard 0 spreads new calls.
    spreading: AtomicBool,
    /// Load (share of a core) from which it spreads them, and below which it
    /// stops; 0: always.
    spread_on: f64,
    spread_off: f64,
    /// Housekeeping periods in a row at or above `spread_on` while on one engine.
    over: AtomicU32,
    steering: Steering,
}

impl Shared {
    /// The shared state of `n` shards; steered Call-IDs are kept `steer_for`;
    /// new calls are spread from a combined load of `spread_from` (share of a
    /// core; 0: always).
    pub fn new(n: usize, steer_for: Duration, spread_from: f64) -> Self {
        Self {
            live: (0..n).map(|_| AtomicUsize::new(0)).collect(),
            load: (0..n).map(|_| AtomicU32::new(0)).collect(),
            spreading: AtomicBool::new(spread_from <= 0.0),
            spread_on: spread_from,
            spread_off: spread_from * 6.0 / 5.0,
            over: AtomicU32::new(0),
            steering: Steering::new(steer_for),
        }
    }
}

/// Call-IDs of new calls that shard 0 gave another shard, kept long enough for
/// the INVITE's retransmissions, its CANCEL and the ACK of a rejection (the
/// no-answer timeout plus 64*T1), after which only tagged messages reach the call.
#[derive(Debug)]
struct Steering {
    keep: Duration,
    len: AtomicUsize,
    table: Mutex<SteerTable>,
}

#[derive(Debug, Default)]
struct SteerTable {
    to: std::collections::HashMap<Box<[u8]>, usize, foldhash::fast::RandomState>,
    order: VecDeque<(Instant, Box<[u8]>)>,
}

impl Steering {
    fn new(keep: Duration) -> Self {
        Self {
            keep,
            len: AtomicUsize::new(0),
            table: Mutex::new(SteerTable::default()),
        }
    }

    /// The shard a Call-ID was steered to.
    fn get(&self, call_id: &[u8]) -> Option<usize> {
        if self.is_empty() {
            return None;
        }
        let t = self.table.lock().ok()?;
        t.to.get(call_id).copied()
    }

    /// Records that `call_id` belongs to `shard`.
    fn insert(&self, call_id: &[u8], shard: usize, now: Instant) {
        if let Ok(mut t) = self.table.lock() {
            let key: Box<[u8]> = call_id.into();
            if t.to.insert(key.clone(), shard).is_none() {
                t.order.push_back((now + self.keep, key));
            }
            self.len.store(t.to.len(), Ordering::Relaxed);
        }
    }

    /// Forgets the Call-IDs kept long enough.
    fn expire(&self, now: Instant) {
        if self.is_empty() {
            return;
        }
        if let Ok(mut t) = self.table.lock() {
            while t.order.front().is_some_and(|(at, _)| *at <= now) {
                if let Some((_, key)) = t.order.pop_front() {
                    t.to.remove(&key);
                }
            }
            self.len.store(t.to.len(), Ordering::Relaxed);
        }
    }

    /// How many Call-IDs are steered now.
    fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether no Call-ID is steered now.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// This engine's place among the shards.
#[derive(Debug, Clone)]
pub struct Shards {
    /// This engine's index.
    pub index: usize,
    /// Each shard's inbound queue (by index).
    peers: Arc<[mpsc::Sender<Inbound>]>,
    shared: Arc<Shared>,
    /// The shard the next spread call goes to.
    next: usize,
    /// `maskline_sip_shard_handoffs_total`: messages read by one engine and
    /// handled by another.
    handoffs: metrics::Counter,
}

/// Where a received message belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner<'a> {
    /// A known shard.
    Shard(usize),
    /// A message with this Call-ID that names no shard (a new INVITE, or any
    /// message of a call no shard holds): shard 0 decides.
    Unclaimed(&'a [u8]),
}

impl Shards {
    /// The shards of `peers.len()` engines; this one is `index`.
    pub fn new(index: usize, peers: Arc<[mpsc::Sender<Inbound>]>, shared: Arc<Shared>) -> Self {
        Self {
            index,
            peers,
            shared,
            next: 0,
            handoffs: metrics::counter!("maskline_sip_shard_handoffs_total"),
        }
    }

    /// How many engines there are.
    pub fn count(&self) -> usize {
        self.peers.len()
    }

    /// The shard of a received message (see the module documentation).
    pub fn owner_of<'a>(&self, data: &'a [u8]) -> Owner<'a> {
        let n = self.count();
        if n <= 1 {
            return Owner::Shard(0);
        }
        let scan = scan(data);
        let Some(call_id) = scan.call_id else {
            // No readable Call-ID: a stateless answer needs no call.
            return Owner::Shard(self.index);
        };
        if let Some(s) = marked_shard(call_id, CALL_ID_DIGITS, n) {
            return Owner::Shard(s);
        }
        if let Some(s) = scan.our_tag.and_then(|t| marked_shard(t, TAG_DIGITS, n)) {
            return Owner::Shard(s);
        }
        match self.shared.steering.get(call_id) {
            Some(s) => Owner::Shard(s),
            None => Owner::Unclaimed(call_id),
        }
    }

    /// Shard 0, for a new call with this Call-ID: the shard that takes it (this one
    /// unless the engines are loaded), recorded so that the call's untagged
    /// messages follow it.
    pub fn place(&mut self, call_id: &[u8], now: Instant) -> usize {
        let n = self.count();
        if n <= 1 || !self.shared.spreading.load(Ordering::Relaxed) {
            return self.index;
        }
        self.next = (self.next + 1) % n;
        if self.next != self.index {
            self.shared.steering.insert(call_id, self.next, now);
        }
        self.next
    }

    /// Housekeeping: records this engine thread's load (`cpu` of one core); shard 0
    /// also decides whether to spread new calls and forgets old steering entries.
    pub fn tick(&self, cpu: f64, now: Instant) {
        if let Some(mine) = self.shared.load.get(self.index) {
            mine.store((cpu * 1000.0).clamp(0.0, 1e6) as u32, Ordering::Relaxed);
        }
        if self.index != 0 {
            return;
        }
        let total: f64 = self
            .shared
            .load
            .iter()
            .map(|l| f64::from(l.load(Ordering::Relaxed)) / 1000.0)
            .sum();
        metrics::gauge!("maskline_sip_engine_load").set(total);
        let was = self.shared.spreading.load(Ordering::Relaxed);
        let now_spreading = if self.shared.spread_on <= 0.0 {
            true
        } else if was {
            total >= self.shared.spread_off
        } else if total >= self.shared.spread_on {
            // Busy periods are counted on one engine only, from 0 each time.
            let over = self.shared.over.fetch_add(1, Ordering::Relaxed) + 1;
            if over >= SPREAD_AFTER {
                self.shared.over.store(0, Ordering::Relaxed);
            }
            over >= SPREAD_AFTER
        } else {
            self.shared.over.store(0, Ordering::Relaxed);
            false
        };
        if now_spreading != was {
            self.shared
                .spreading
                .store(now_spreading, Ordering::Relaxed);
            metrics::gauge!("maskline_sip_spreading").set(if now_spreading { 1.0 } else { 0.0 });
            tracing::debug!(load = total, spreading = now_spreading, "sip: engines");
        }
        self.shared.steering.expire(now);
    }

    /// Whether shard 0 spreads new calls over the engines now.
    pub fn spreading(&self) -> bool {
        self.shared.spreading.load(Ordering::Relaxed)
    }

    /// Call-IDs steered away from shard 0 now.
    #[cfg(test)]
    fn steered(&self) -> usize {
        self.shared.steering.len()
    }

    /// Hands a message to shard `to`. A full queue drops it (counted): over UDP
    /// the sender retransmits, as after any loss.
    pub fn forward(&self, to: usize, data: &[u8], source: SocketAddr, transport: Transport) {
        self.forward_owned(
            to,
            Inbound {
                data: data.to_vec(),
                source,
                transport,
            },
        );
    }

    /// [`Shards::forward`] for a message already owned.
    pub fn forward_owned(&self, to: usize, m: Inbound) {
        let Some(peer) = self.peers.get(to) else {
            return;
        };
        if peer.try_send(m).is_err() {
            metrics::counter!("maskline_sip_shard_overflow_total").increment(1);
        } else {
            self.handoffs.increment(1);
        }
    }

    /// Live calls in the other shards (as they last recorded them).
    pub fn others_live(&self) -> usize {
        self.shared
            .live
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != self.index)
            .map(|(_, l)| l.load(Ordering::Relaxed))
            .sum()
    }

    /// Records this shard's live calls; returns the total over all shards.
    pub fn set_live(&self, calls: usize) -> usize {
        if let Some(mine) = self.shared.live.get(self.index) {
            mine.store(calls, Ordering::Relaxed);
        }
        self.shared
            .live
            .iter()
            .map(|l| l.load(Ordering::Relaxed))
            .sum()
    }
}

/// Hex digits after the shard digit of an [`a_tag`] and of a [`b_call_id`].
const TAG_DIGITS: usize = 24;
const CALL_ID_DIGITS: usize = 32;

/// A new Call-ID for a B leg placed by shard `shard`: `s`, the shard as one hex
/// digit, then 32 random hex digits.
pub fn b_call_id(shard: usize) -> String {
    maskline_sip::new_call_id_with_prefix(shard_prefix(shard).as_str())
}

/// A new tag for our side of an A-leg dialog held by shard `shard`: `s`, the
/// shard as one hex digit, then 24 random hex digits.
pub fn a_tag(shard: usize) -> String {
    maskline_sip::new_tag_with_prefix(shard_prefix(shard).as_str())
}

/// `s` and the shard as one hex digit, without allocating.
struct ShardPrefix([u8; 2]);

impl ShardPrefix {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("s0")
    }
}

fn shard_prefix(shard: usize) -> ShardPrefix {
    let d = char::from_digit((shard % MAX_ENGINES) as u32, 16).unwrap_or('0');
    ShardPrefix([b's', u8::try_from(d).unwrap_or(b'0')])
}

/// The shard in an identifier of ours (`s`, a hex digit, `rest` more characters),
/// if it is one and the shard exists.
fn marked_shard(id: &[u8], rest: usize, n: usize) -> Option<usize> {
    match id {
        [b's', d, tail @ ..] if tail.len() == rest => char::from(*d)
            .to_digit(16)
            .map(|s| s as usize)
            .filter(|s| *s < n),
        _ => None,
    }
}

/// What the dispatcher reads of a message: its Call-ID and the tag we would have
/// written (the To tag of a request, the From tag of a response).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scan<'a> {
    /// The first Call-ID (or `i`) value, trimmed.
    pub call_id: Option<&'a [u8]>,
    /// The tag parameter of To (requests) or From (responses).
    pub our_tag: Option<&'a [u8]>,
}

/// One pass over the header lines (stops at the blank line). Every datagram
/// goes through here before it is parsed, so lines are found with `memchr`
/// and only those whose first letter can start a Call-ID, To (requests) or
/// From (responses) header are looked at further.
pub fn scan(data: &[u8]) -> Scan<'_> {
    let response = data.starts_with(b"SIP/");
    let mut out = Scan::default();
    let Some(first) = memchr::memchr(b'\n', data) else {
        return out;
    };
    let mut rest = data.get(first + 1..).unwrap_or_default();
    let mut tag_seen = false;
    while !rest.is_empty() {
        let (line, next) = match memchr::memchr(b'\n', rest) {
            Some(i) => (rest.get(..i).unwrap_or_default(), rest.get(i + 1..)),
            None => (rest, None),
        };
        rest = next.unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(&lead) = line.first() else {
            break;
        };
        let wanted = match lead.to_ascii_lowercase() {
            b'c' | b'i' => out.call_id.is_none(),
            b't' => !response && !tag_seen,
            b'f' => response && !tag_seen,
            _ => false,
        };
        if !wanted {
            continue;
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let (name, value) = line.split_at(colon);
        let name = name.trim_ascii_end();
        let value = value.get(1..).unwrap_or_default();
        if out.call_id.is_none()
            && (name.eq_ignore_ascii_case(b"call-id") || name.eq_ignore_ascii_case(b"i"))
        {
            out.call_id = Some(value.trim_ascii());
        } else if !tag_seen
            && if response {
                name.eq_ignore_ascii_case(b"from") || name.eq_ignore_ascii_case(b"f")
            } else {
                name.eq_ignore_ascii_case(b"to") || name.eq_ignore_ascii_case(b"t")
            }
        {
            tag_seen = true;
            out.our_tag = tag_param(value);
        }
        if out.call_id.is_some() && tag_seen {
            break;
        }
    }
    out
}

/// The `tag` parameter of a From/To value: after the closing `>` of a name-addr
/// (a quoted display name may contain anything), else anywhere after the URI.
fn tag_param(value: &[u8]) -> Option<&[u8]> {
    let params = match value.iter().rposition(|b| *b == b'>') {
        Some(i) => value.get(i + 1..)?,
        None => value,
    };
    params.split(|b| *b == b';').skip(1).find_map(|p| {
        let (k, v) = match p.iter().position(|b| *b == b'=') {
            Some(i) => (p.get(..i)?, p.get(i + 1..)?),
            None => return None,
        };
        k.trim_ascii()
            .eq_ignore_ascii_case(b"tag")
            .then(|| v.trim_ascii())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The shard of a Call-ID among `n`, when the Call-ID is one of our B legs.
    fn owner(call_id: &[u8], n: usize) -> Option<usize> {
        if n <= 1 {
            return Some(0);
        }
        marked_shard(call_id, CALL_ID_DIGITS, n)
    }

    fn call_id_of(data: &[u8]) -> Option<&[u8]> {
        scan(data).call_id
    }

    #[test]
    fn the_call_id_is_found_in_long_and_compact_form() {
        let m = b"INVITE sip:x@h SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nCall-ID:  abc@h \r\n\r\nbody";
        assert_eq!(call_id_of(m), Some(&b"abc@h"[..]));
        let m = b"SIP/2.0 200 OK\r\nv: SIP/2.0/UDP h\r\ni:xyz\r\n\r\n";
        assert_eq!(call_id_of(m), Some(&b"xyz"[..]));
        let m = b"BYE sip:x@h SIP/2.0\r\nVia: a\r\n\r\nCall-ID: in-the-body\r\n";
        assert_eq!(call_id_of(m), None);
    }

    #[test]
    fn our_b_legs_and_a_tags_name_their_shard() {
        for n in 2..=MAX_ENGINES {
            for shard in 0..n {
                assert_eq!(owner(b_call_id(shard).as_bytes(), n), Some(shard));
                assert_eq!(
                    marked_shard(a_tag(shard).as_bytes(), TAG_DIGITS, n),
                    Some(shard)
                );
            }
        }
        // A carrier's Call-ID names no shard; nor does a shard that does not exist.
        assert_eq!(owner(b"a84b4c76e66710@pc33.atlanta.com", 3), None);
        assert_eq!(owner(b_call_id(5).as_bytes(), 3), None);
        assert_eq!(owner(b"anything", 1), Some(0));
    }

    #[test]
    fn the_scan_reads_the_tag_we_wrote() {
        // A request from the caller: our tag is the To tag.
        let m = b"BYE sip:x@h SIP/2.0\r\nFrom: <sip:c@g>;tag=theirs\r\n\
            To: \"a;tag=no\" <sip:x@h;tag=uri>;tag=s1abcdefabcdefabcdefabcdef\r\ni: c1\r\n\r\n";
        let s = scan(m);
        assert_eq!(s.call_id, Some(&b"c1"[..]));
        assert_eq!(s.our_tag, Some(&b"s1abcdefabcdefabcdefabcdef"[..]));
        // A response to our request: our tag is the From tag.
        let m = b"SIP/2.0 200 OK\r\nf: sip:x@h ; TAG = s0abcdefabcdefabcdefabcdef\r\n\
            t: <sip:c@g>;tag=theirs\r\nCall-ID: c2\r\n\r\n";
        let s = scan(m);
        assert_eq!(s.our_tag, Some(&b"s0abcdefabcdefabcdefabcdef"[..]));
        // A new INVITE has no To tag.
        let m = b"INVITE sip:x@h SIP/2.0\r\nFrom: <sip:c@g>;tag=1\r\nTo: <sip:x@h>\r\n\
            Call-ID: c3\r\n\r\n";
        assert_eq!(scan(m).our_tag, None);
    }

    #[test]
    fn the_scan_skips_look_alike_headers_and_folds() {
        // Contact and CSeq start like Call-ID, Timestamp like To, a fold holds
        // "Call-ID:"; a request's From tag and a response's To tag are not ours.
        let m = b"BYE sip:x@h SIP/2.0\r\nContact: <sip:c@h>;tag=no\r\nCSeq: 2 BYE\r\n\
            Subject: a\r\n Call-ID: folded\r\nFrom: <sip:a@h>;tag=theirs\r\n\
            Timestamp: 1\r\ni: real\r\nt: <sip:x@h>;tag=s1ours\r\n\r\n";
        let s = scan(m);
        assert_eq!(s.call_id, Some(&b"real"[..]));
        assert_eq!(s.our_tag, Some(&b"s1ours"[..]));
        let r = b"SIP/2.0 200 OK\r\nTo: <sip:x@h>;tag=theirs\r\nf: <sip:a@h>;tag=s0ours\r\n\
            Call-ID: c1\r\n\r\n";
        let s = scan(r);
        assert_eq!(
            (s.call_id, s.our_tag),
            (Some(&b"c1"[..]), Some(&b"s0ours"[..]))
        );
        // No line end at all, and a head cut before its blank line.
        assert_eq!(scan(b"INVITE sip:x@h SIP/2.0"), Scan::default());
        assert_eq!(
            call_id_of(b"ACK sip:x@h SIP/2.0\r\nCall-ID: cut"),
            Some(&b"cut"[..])
        );
    }

    fn two_shards() -> (Shards, Shards) {
        let (tx0, _rx0) = mpsc::channel(4);
        let (tx1, _rx1) = mpsc::channel(4);
        let peers: Arc<[mpsc::Sender<Inbound>]> = Arc::from(vec![tx0, tx1]);
        let shared = Arc::new(Shared::new(2, Duration::from_secs(92), 0.35));
        (
            Shards::new(0, peers.clone(), shared.clone()),
            Shards::new(1, peers, shared),
        )
    }

    #[test]
    fn shard_zero_keeps_new_calls_until_the_engines_are_loaded() {
        let (mut zero, one) = two_shards();
        let now = Instant::now();
        let invite = b"INVITE sip:x@h SIP/2.0\r\nTo: <sip:x@h>\r\nCall-ID: new-1\r\n\r\n";
        assert_eq!(zero.owner_of(invite), Owner::Unclaimed(b"new-1"));
        assert_eq!(zero.place(b"new-1", now), 0);
        assert_eq!(zero.steered(), 0);
        // Loaded: the other shard reports 0.25 of a core, this one 0.1; spread
        // from the second period in a row.
        one.tick(0.25, now);
        zero.tick(0.10, now);
        assert!(!zero.spreading());
        zero.tick(0.10, now);
        assert!(zero.spreading());
        let placed: Vec<usize> = (0..4)
            .map(|i| zero.place(format!("c{i}").as_bytes(), now))
            .collect();
        assert_eq!(placed, [1, 0, 1, 0]);
        // The INVITE's retransmission and CANCEL follow it (any shard reads it so).
        let cancel = b"CANCEL sip:x@h SIP/2.0\r\nTo: <sip:x@h>\r\nCall-ID: c0\r\n\r\n";
        assert_eq!(zero.owner_of(cancel), Owner::Shard(1));
        assert_eq!(one.owner_of(cancel), Owner::Shard(1));
        // Spread, the load must stay at 6/5 of the threshold (0.42): still
        // spreading at 0.45, not any more at 0.40; then, on one engine, 0.36 for
        // one period does not spread again, for two it does.
        one.tick(0.35, now);
        zero.tick(0.10, now);
        assert!(zero.spreading());
        one.tick(0.30, now);
        zero.tick(0.10, now);
        assert!(!zero.spreading());
        one.tick(0.26, now);
        zero.tick(0.10, now);
        assert!(!zero.spreading());
        zero.tick(0.10, now);
        assert!(zero.spreading());
        // Entries go once kept long enough.
        assert_eq!(zero.steered(), 2);
        zero.tick(0.1, now + Duration::from_secs(93));
        assert_eq!(zero.steered(), 0);
        assert_eq!(zero.owner_of(cancel), Owner::Unclaimed(b"c0"));
    }
}
