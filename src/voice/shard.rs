//! Engine shards: several engine threads, each owning the calls whose Call-ID
//! maps to it, so call handling scales past one core without a lock on the call
//! path.
//!
//! Where a message goes is a pure function of its Call-ID ([`owner`]): the B-leg
//! dialogs we create carry their shard in their Call-ID ([`b_call_id`]), and any
//! other Call-ID (the A leg's, chosen by the carrier) is hashed. A message, its
//! retransmissions, its CANCEL, ACK and BYE, and every response on either leg
//! therefore reach the shard that holds the call. The primary UDP socket and the
//! other transports are read by shard 0, which hands a message of another shard
//! over that shard's queue without parsing it (a header scan for `Call-ID`);
//! every shard sends on the shared sockets itself.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use maskline_sip::transaction::Transport;
use tokio::sync::mpsc;

use super::transport::Inbound;

/// Most engine threads (the shard is one hex digit of a B-leg Call-ID).
pub const MAX_ENGINES: usize = 16;

/// This engine's place among the shards.
#[derive(Debug, Clone)]
pub struct Shards {
    /// This engine's index.
    pub index: usize,
    /// Each shard's inbound queue (by index).
    peers: Arc<[mpsc::Sender<Inbound>]>,
    /// Live calls per shard (for the `maskline_live_calls` gauge).
    live: Arc<[AtomicUsize]>,
    /// `maskline_sip_shard_handoffs_total`: messages read by one engine and
    /// handled by another.
    handoffs: metrics::Counter,
}

impl Shards {
    /// The shards of `peers.len()` engines; this one is `index`.
    pub fn new(
        index: usize,
        peers: Arc<[mpsc::Sender<Inbound>]>,
        live: Arc<[AtomicUsize]>,
    ) -> Self {
        Self {
            index,
            peers,
            live,
            handoffs: metrics::counter!("maskline_sip_shard_handoffs_total"),
        }
    }

    /// How many engines there are.
    pub fn count(&self) -> usize {
        self.peers.len()
    }

    /// The shard of a received message (this one when it has no readable Call-ID:
    /// a stateless answer needs no call).
    pub fn owner_of(&self, data: &[u8]) -> usize {
        let n = self.count();
        if n <= 1 {
            return 0;
        }
        call_id_of(data).map_or(self.index, |id| owner(id, n))
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
        self.live
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != self.index)
            .map(|(_, l)| l.load(Ordering::Relaxed))
            .sum()
    }

    /// Records this shard's live calls; returns the total over all shards.
    pub fn set_live(&self, calls: usize) -> usize {
        if let Some(mine) = self.live.get(self.index) {
            mine.store(calls, Ordering::Relaxed);
        }
        self.live.iter().map(|l| l.load(Ordering::Relaxed)).sum()
    }
}

/// A new Call-ID for a B leg placed by shard `shard`: `s`, the shard as one hex
/// digit, then 32 random hex digits.
pub fn b_call_id(shard: usize) -> String {
    let digit = char::from_digit((shard % MAX_ENGINES) as u32, 16).unwrap_or('0');
    format!("s{digit}{}", maskline_sip::new_call_id())
}

/// The shard of a Call-ID among `n`.
pub fn owner(call_id: &[u8], n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    if let [b's', d, rest @ ..] = call_id {
        if rest.len() == 32 {
            if let Some(s) = char::from(*d).to_digit(16) {
                if (s as usize) < n {
                    return s as usize;
                }
            }
        }
    }
    // FNV-1a: stable across processes and cheap on short strings.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in call_id {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % n as u64) as usize
}

/// The value of the first `Call-ID` (or compact `i`) header of a message, trimmed;
/// `None` if there is none before the blank line.
pub fn call_id_of(data: &[u8]) -> Option<&[u8]> {
    let mut lines = data.split(|b| *b == b'\n');
    lines.next()?; // start line
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return None;
        }
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = line.split_at(colon);
        let name = name.trim_ascii_end();
        if name.eq_ignore_ascii_case(b"call-id") || name.eq_ignore_ascii_case(b"i") {
            return Some(value.get(1..).unwrap_or_default().trim_ascii());
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
    fn our_b_legs_go_to_their_shard_and_others_hash_stably() {
        for n in 1..=MAX_ENGINES {
            for shard in 0..n {
                assert_eq!(owner(b_call_id(shard).as_bytes(), n), shard);
            }
        }
        let a = owner(b"a84b4c76e66710@pc33.atlanta.com", 3);
        assert!(a < 3);
        assert_eq!(owner(b"a84b4c76e66710@pc33.atlanta.com", 3), a);
        // A carrier's Call-ID spread over the shards.
        let mut seen = [0usize; 4];
        for i in 0..4000 {
            seen[owner(format!("{i}-call@gw.example").as_bytes(), 4)] += 1;
        }
        assert!(seen.iter().all(|&c| c > 700), "{seen:?}");
    }
}
