//! RTCP privacy scrubbing: SDES items (RFC 3550 §6.5) are overwritten in place.
//!
//! A CNAME is typically `user@host` (RFC 3550 §6.5.1) and NAME/EMAIL/PHONE items
//! can carry the very identity the relay masks. This module owns the in-place
//! rewrite: every SDES item keeps its length (so no length field, padding or
//! buffer changes, and no allocation), CNAME becomes a stable token derived from
//! the chunk's SSRC, and every other item's text becomes `-` characters.

/// RTCP packet type of SDES.
const SDES: u8 = 202;
/// SDES item type of CNAME.
const CNAME: u8 = 1;

/// Whether a packet on an RTP port is RTCP (RFC 5761 §4: rtcp-mux demultiplexing).
pub(super) fn is_rtcp(pkt: &[u8]) -> bool {
    pkt.len() >= 8 && pkt[0] >> 6 == 2 && (192..=223).contains(&pkt[1])
}

/// Overwrites the SDES items of a compound RTCP packet in place. Malformed
/// packets are left as they are from the first inconsistency on.
pub(super) fn scrub_sdes(pkt: &mut [u8]) {
    let mut off = 0;
    while off + 4 <= pkt.len() {
        let count = (pkt[off] & 0x1f) as usize;
        let pt = pkt[off + 1];
        let words = u16::from_be_bytes([pkt[off + 2], pkt[off + 3]]) as usize;
        let end = off + 4 + words * 4;
        if pkt[off] >> 6 != 2 || end > pkt.len() {
            return;
        }
        if pt == SDES {
            scrub_chunks(&mut pkt[off + 4..end], count);
        }
        off = end;
    }
}

fn scrub_chunks(body: &mut [u8], count: usize) {
    let mut p = 0;
    for _ in 0..count {
        if p + 4 > body.len() {
            return;
        }
        let ssrc = [body[p], body[p + 1], body[p + 2], body[p + 3]];
        p += 4;
        // Items until a null item, then padding to the next 32-bit boundary.
        loop {
            let Some(&kind) = body.get(p) else { return };
            if kind == 0 {
                p = (p + 4) & !3;
                break;
            }
            let Some(&len) = body.get(p + 1) else { return };
            let (start, end) = (p + 2, p + 2 + len as usize);
            let Some(text) = body.get_mut(start..end) else {
                return;
            };
            if kind == CNAME {
                cname_token(&ssrc, text);
            } else {
                text.fill(b'-');
            }
            p = end;
        }
    }
}

/// Fills `out` with hex digits of the SSRC, repeated: stable per source,
/// meaningless outside the call.
fn cname_token(ssrc: &[u8; 4], out: &mut [u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in out.iter_mut().enumerate() {
        let byte = ssrc[(i / 2) % 4];
        let nibble = if i % 2 == 0 { byte >> 4 } else { byte & 0xf };
        *b = HEX[nibble as usize];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RR (empty) + SDES with CNAME "alice@10.0.0.1" and NAME "Al".
    fn compound() -> Vec<u8> {
        let mut p = vec![0x80, 201, 0, 1, 1, 2, 3, 4];
        let mut chunk = vec![0xde, 0xad, 0xbe, 0xef, CNAME, 14];
        chunk.extend_from_slice(b"alice@10.0.0.1");
        chunk.extend_from_slice(&[2, 2, b'A', b'l', 0]);
        while chunk.len() % 4 != 0 {
            chunk.push(0);
        }
        let words = (chunk.len() / 4) as u16;
        p.extend_from_slice(&[0x81, SDES]);
        p.extend_from_slice(&words.to_be_bytes());
        p.extend_from_slice(&chunk);
        p
    }

    #[test]
    fn cname_and_name_are_overwritten_in_place() {
        let mut p = compound();
        let before = p.len();
        assert!(is_rtcp(&p));
        scrub_sdes(&mut p);
        assert_eq!(p.len(), before);
        let text = String::from_utf8_lossy(&p);
        assert!(!text.contains("alice"), "{text}");
        assert!(!text.contains("10.0.0.1"));
        assert!(text.contains("deadbeefdeadbe"), "{text}");
        assert!(text.contains("--"));
        // Headers untouched.
        assert_eq!(&p[..8], &compound()[..8]);
    }

    #[test]
    fn malformed_packets_do_not_panic() {
        let full = compound();
        for cut in 0..full.len() {
            let mut p = full[..cut].to_vec();
            scrub_sdes(&mut p);
        }
        let mut junk = vec![0x81, SDES, 0xff, 0xff, 1, 2];
        scrub_sdes(&mut junk);
        let mut p = compound();
        let last = p.len() - 1;
        p[17] = 200; // CNAME length past the end
        p[last] = 7;
        scrub_sdes(&mut p);
    }

    #[test]
    fn rtp_is_not_taken_for_rtcp() {
        let rtp = [0x80u8, 0, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4];
        assert!(!is_rtcp(&rtp));
        let dtmf = [0x80u8, 101, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4];
        assert!(!is_rtcp(&dtmf));
    }
}
