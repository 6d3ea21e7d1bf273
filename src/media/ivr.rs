//! The relay as an endpoint on leg A: prompt playback and RFC 4733 DTMF
//! detection for calls the relay answers itself (IVR, announcements).
//!
//! Owned by a forwarding worker (no locks, no allocation per packet): while a
//! session is in IVR mode its leg A media is terminated here instead of being
//! forwarded. Playback is paced from an absolute schedule (packet `k` of a prompt
//! is due at `start + k × 20 ms`), so a late wake-up never makes the stream drift:
//! the next packets catch up. Each prompt starts a talkspurt (marker bit); the
//! RTP timestamp advances with wall-clock time across prompts (8 samples a ms),
//! the sequence number by one a packet, with one random SSRC per session.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Instant;

use super::prompt::{Prompt, FRAME, G711, PTIME};

/// RTP header length without CSRCs or extensions.
const RTP_HEADER: usize = 12;

/// What a session in IVR mode knows about leg A and what it is playing.
#[derive(Debug)]
pub(super) struct Ivr {
    law: G711,
    te_pt: Option<u8>,
    ssrc: u32,
    seq: u16,
    ts0: u32,
    epoch: Instant,
    play: Option<Playback>,
    /// RTP timestamp of the last telephone-event packet (one event = one ts)
    /// and whether that packet ended the event.
    last_event: Option<(u32, bool)>,
    buf: [u8; RTP_HEADER + FRAME],
}

#[derive(Debug)]
struct Playback {
    prompt: Arc<Prompt>,
    start: Instant,
    next: usize,
    ts_start: u32,
}

/// What a pump did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pumped {
    pub sent: u64,
    pub finished: bool,
}

impl Ivr {
    pub(super) fn new(law: G711, te_pt: Option<u8>, now: Instant) -> Ivr {
        Ivr {
            law,
            te_pt,
            ssrc: rand::random(),
            seq: rand::random(),
            ts0: rand::random(),
            epoch: now,
            play: None,
            last_event: None,
            buf: [0; RTP_HEADER + FRAME],
        }
    }

    /// Starts `prompt` now (replacing any playing one), or stops playing.
    pub(super) fn play(&mut self, prompt: Option<Arc<Prompt>>, now: Instant) {
        self.play = prompt.map(|prompt| {
            let ms = now.duration_since(self.epoch).as_millis();
            Playback {
                prompt,
                start: now,
                next: 0,
                ts_start: self.ts0.wrapping_add((ms as u32).wrapping_mul(8)),
            }
        });
    }

    pub(super) fn is_playing(&self) -> bool {
        self.play.is_some()
    }

    /// Sends every packet due at `now` to `dest`; `finished` once the prompt's
    /// last packet is out.
    pub(super) fn pump(
        &mut self,
        now: Instant,
        sock: &UdpSocket,
        dest: Option<SocketAddr>,
    ) -> Pumped {
        let mut out = Pumped::default();
        let Some(p) = self.play.as_mut() else {
            return out;
        };
        let frames = p.prompt.frames();
        let samples = p.prompt.samples(self.law);
        while p.next < frames && p.start + PTIME * (p.next as u32) <= now {
            let k = p.next;
            p.next += 1;
            let Some(dest) = dest else { continue };
            let b = &mut self.buf;
            b[0] = 0x80;
            b[1] = self.law.payload_type() | if k == 0 { 0x80 } else { 0 };
            b[2..4].copy_from_slice(&self.seq.to_be_bytes());
            let ts = p.ts_start.wrapping_add((k * FRAME) as u32);
            b[4..8].copy_from_slice(&ts.to_be_bytes());
            b[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
            let from = k * FRAME;
            let chunk = samples
                .get(from..(from + FRAME).min(samples.len()))
                .unwrap_or(&[]);
            b[RTP_HEADER..RTP_HEADER + chunk.len()].copy_from_slice(chunk);
            b[RTP_HEADER + chunk.len()..].fill(self.law.silence());
            self.seq = self.seq.wrapping_add(1);
            if sock.send_to(&b[..], dest).is_ok() {
                out.sent += 1;
            }
        }
        if p.next >= frames {
            self.play = None;
            out.finished = true;
        }
        out
    }

    /// A packet from leg A: the digit it starts, if it is the first packet of a
    /// new RFC 4733 event. Continuation and (retransmitted) end packets of an
    /// event carry its timestamp and are not reported again; a new event has a
    /// new timestamp, or (a sender replaying one recording) the same timestamp
    /// but a non-end packet after the end packets.
    pub(super) fn on_rtp(&mut self, pkt: &[u8]) -> Option<char> {
        let te = self.te_pt?;
        let (digit, end) = telephone_event(pkt, te)?;
        let ts = u32::from_be_bytes([pkt[4], pkt[5], pkt[6], pkt[7]]);
        let new = match self.last_event {
            Some((last, ended)) => last != ts || (ended && !end),
            None => true,
        };
        self.last_event = Some((ts, end));
        new.then_some(digit)
    }
}

/// The DTMF digit of an RFC 4733 telephone-event packet with payload type `pt`,
/// and whether the packet ends the event (E bit).
pub(super) fn telephone_event(pkt: &[u8], pt: u8) -> Option<(char, bool)> {
    if pkt.len() < RTP_HEADER || pkt[0] >> 6 != 2 || pkt[1] & 0x7F != pt {
        return None;
    }
    let cc = usize::from(pkt[0] & 0x0F);
    let mut at = RTP_HEADER + 4 * cc;
    if pkt[0] & 0x10 != 0 {
        let ext = pkt.get(at + 2..at + 4)?;
        at += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    let ev = *pkt.get(at)?;
    let end = pkt.get(at + 1)? & 0x80 != 0;
    pkt.get(at + 3)?;
    let d = match ev {
        0..=9 => char::from(b'0' + ev),
        10 => '*',
        11 => '#',
        12..=15 => char::from(b'A' + ev - 12),
        _ => return None,
    };
    Some((d, end))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn event(pt: u8, ts: u32, ev: u8, end: bool) -> Vec<u8> {
        let mut p = vec![0x80, pt, 0, 1];
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&[1, 2, 3, 4]);
        p.extend_from_slice(&[ev, if end { 0x8A } else { 0x0A }, 0, 160]);
        p
    }

    #[test]
    fn each_event_is_reported_once() {
        let mut ivr = Ivr::new(G711::Pcmu, Some(101), Instant::now());
        assert_eq!(ivr.on_rtp(&event(101, 1000, 5, false)), Some('5'));
        assert_eq!(ivr.on_rtp(&event(101, 1000, 5, false)), None);
        assert_eq!(ivr.on_rtp(&event(101, 1000, 5, true)), None);
        assert_eq!(ivr.on_rtp(&event(101, 2000, 11, true)), Some('#'));
        assert_eq!(ivr.on_rtp(&event(0, 3000, 1, false)), None, "audio");
        assert_eq!(ivr.on_rtp(&event(101, 4000, 10, false)), Some('*'));
        // One recording replayed twice (same timestamp): two events.
        assert_eq!(ivr.on_rtp(&event(101, 4000, 10, true)), None);
        assert_eq!(ivr.on_rtp(&event(101, 4000, 10, false)), Some('*'));
        assert_eq!(ivr.on_rtp(&event(101, 4000, 10, true)), None);
        // An event whose start packet was lost: its first (end) packet counts.
        assert_eq!(ivr.on_rtp(&event(101, 9000, 3, true)), Some('3'));
    }

    #[test]
    fn playback_is_paced_marked_and_timestamped() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let dest = rx.local_addr().unwrap();
        let p = Arc::new(Prompt::new("t", vec![1; 400], vec![2; 400]).unwrap());
        let t0 = Instant::now();
        let mut ivr = Ivr::new(G711::Pcma, None, t0);
        ivr.play(Some(p), t0);
        assert_eq!(ivr.pump(t0, &tx, Some(dest)).sent, 1);
        // Late by 50 ms: the two packets due meanwhile go out at once.
        let r = ivr.pump(t0 + Duration::from_millis(50), &tx, Some(dest));
        assert_eq!(
            r,
            Pumped {
                sent: 2,
                finished: true
            }
        );
        let mut buf = [0u8; 400];
        let mut got = Vec::new();
        for _ in 0..3 {
            let n = rx.recv(&mut buf).unwrap();
            got.push(buf[..n].to_vec());
        }
        assert_eq!(got[0][1], 0x80 | 8, "marker + PCMA");
        assert_eq!(got[1][1], 8);
        let ts = |p: &[u8]| u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
        let seq = |p: &[u8]| u16::from_be_bytes([p[2], p[3]]);
        assert_eq!(ts(&got[1]).wrapping_sub(ts(&got[0])), 160);
        assert_eq!(ts(&got[2]).wrapping_sub(ts(&got[1])), 160);
        assert_eq!(seq(&got[2]).wrapping_sub(seq(&got[0])), 2);
        assert_eq!(&got[2][12..92], &[2; 80][..]);
        assert_eq!(&got[2][92..], &[0xD5; 80][..], "padded with silence");
    }
}
