//! Byte layouts of the Redis store: key names, binding ids, binding records and
//! route values, and the compact encoding of numbers inside sealed blobs.
//!
//! The Lua scripts (`src/store/lua/prelude.lua`) read and write the same layouts;
//! the offsets here and there must agree (the unit tests below pin them).

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::bindings::{BindingId, BindingState, NumberState, UnixMs};
use crate::numbers::{NumberHasher, E164};

/// Bytes of a party's keyed hash used in keys and records ("tag"). 64 bits: the
/// chance that a stranger's tag equals one of the ~hundreds of holders of one number
/// is ~2^-55 per call, and the saving keeps records under Redis' 64-byte listpack
/// limit.
pub const TAG_LEN: usize = 8;

/// A party's tag: the first [`TAG_LEN`] bytes of its keyed hash.
pub fn party_tag(hasher: &NumberHasher, n: &E164) -> [u8; TAG_LEN] {
    let h = hasher.hash(n);
    let mut t = [0u8; TAG_LEN];
    t.copy_from_slice(&h[..TAG_LEN]);
    t
}

/// Errors decoding stored bytes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    /// A stored value is shorter or otherwise not what we write.
    #[error("malformed {0}")]
    Malformed(&'static str),
}

/// The pool's key prefix: its Redis Cluster hash tag.
pub fn prefix(pool: &str) -> String {
    format!("{{{pool}}}")
}

/// Pool meta hash.
pub fn meta_key(pool: &str) -> String {
    format!("{{{pool}}}m")
}

/// Digits of a number (without `+`): how virtual numbers appear in keys.
pub fn digits(n: &E164) -> &str {
    n.expose().get(1..).unwrap_or("")
}

/// Route/hold key of the party with tag `tag` on virtual number `x`.
pub fn route_key(pool: &str, x: &E164, tag: &[u8; TAG_LEN]) -> Vec<u8> {
    [
        b"{".as_slice(),
        pool.as_bytes(),
        b"}r",
        digits(x).as_bytes(),
        tag,
    ]
    .concat()
}

/// The hash holding the record of shipment hash `sh` (field: `sh`). Records are
/// sharded by the first two bytes of `sh` into small, listpack-encoded hashes.
pub fn record_key(pool: &str, sh: &[u8; 8]) -> Vec<u8> {
    let mut k = format!("{{{pool}}}s").into_bytes();
    k.extend_from_slice(&sh[..2]);
    k
}

/// Binding ZSETs per number: enough shards that each stays a listpack
/// (Redis' default `zset-max-listpack-entries` is 128; leave room for cooling).
pub fn shards_for(cap: u32) -> u32 {
    cap.div_ceil(50).max(1)
}

/// Shipment hash: the first 8 bytes of SHA-256(pool, 0, shipment id). Not secret
/// (shipment ids are the platform's references, not personal data).
pub fn shipment_hash(pool: &str, shipment: &str) -> [u8; 8] {
    let mut h = Sha256::new();
    h.update(pool.as_bytes());
    h.update([0u8]);
    h.update(shipment.as_bytes());
    let full = h.finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&full[..8]);
    out
}

/// Pool id as the 3 bytes stored in pool meta and binding ids.
pub fn pid_bytes(pid: u32) -> [u8; 3] {
    let b = pid.to_be_bytes();
    [b[1], b[2], b[3]]
}

/// Largest pool id that fits in a binding id.
pub const MAX_PID: u32 = 0x00FF_FFFF;

/// The parts of a binding id: shipment hash, pool id, generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdParts {
    /// Shipment hash (record key suffix).
    pub sh: [u8; 8],
    /// Pool id.
    pub pid: u32,
    /// Random generation, distinguishes successive bindings of one shipment.
    pub gen: [u8; 3],
}

/// Builds a binding id (UUID version 8): `sh[0..6] 0x80 sh[6] 0x80 sh[7] pid(3) gen(3)`.
/// The same bytes are built by `make_id` in the Lua prelude.
pub fn make_id(p: &IdParts) -> BindingId {
    let pid = pid_bytes(p.pid);
    let b = [
        p.sh[0], p.sh[1], p.sh[2], p.sh[3], p.sh[4], p.sh[5], 0x80, p.sh[6], 0x80, p.sh[7], pid[0],
        pid[1], pid[2], p.gen[0], p.gen[1], p.gen[2],
    ];
    Uuid::from_bytes(b)
}

/// Splits a binding id; `None` for ids this store did not make.
pub fn split_id(id: &BindingId) -> Option<IdParts> {
    let b = id.as_bytes();
    if b[6] != 0x80 || b[8] != 0x80 {
        return None;
    }
    Some(IdParts {
        sh: [b[0], b[1], b[2], b[3], b[4], b[5], b[7], b[9]],
        pid: u32::from_be_bytes([0, b[10], b[11], b[12]]),
        gen: [b[13], b[14], b[15]],
    })
}

fn dec6(b: &[u8]) -> i64 {
    b.iter().fold(0i64, |n, &x| (n << 8) | i64::from(x))
}

/// A decoded binding record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Generation (part of the id).
    pub gen: [u8; 3],
    /// Creation time.
    pub created: UnixMs,
    /// Expiry.
    pub expires: UnixMs,
    /// Active or delivered.
    pub state: BindingState,
    /// Tag of party A.
    pub ha: [u8; TAG_LEN],
    /// Tag of party B.
    pub hb: [u8; TAG_LEN],
    /// Digits of the virtual number.
    pub x: String,
    /// Digits of the extension on X, if any.
    pub extension: Option<String>,
    /// Shipment id.
    pub shipment: String,
}

/// Decodes a record (layout in `prelude.lua`: gen(3) created(6) expires(6) state(1)
/// tA(8) tB(8) lens(1) X as BCD, extension as BCD, shipment; `lens` = X's BCD bytes
/// + 16 × extension digits).
pub fn parse_record(r: &[u8]) -> Result<Record, CodecError> {
    let bad = || CodecError::Malformed("binding record");
    if r.len() < 34 {
        return Err(bad());
    }
    let xl = usize::from(r[32] & 0x0F);
    let el = usize::from(r[32] >> 4);
    let x = r.get(33..33 + xl).ok_or_else(bad)?;
    let eb = r.get(33 + xl..33 + xl + el.div_ceil(2)).ok_or_else(bad)?;
    let ship = r.get(33 + xl + el.div_ceil(2)..).ok_or_else(bad)?;
    let extension = if el == 0 {
        None
    } else {
        let e = unpack_digits(eb)?;
        if e.len() != el {
            return Err(bad());
        }
        Some(e)
    };
    let mut gen = [0u8; 3];
    gen.copy_from_slice(&r[0..3]);
    let mut ha = [0u8; TAG_LEN];
    ha.copy_from_slice(&r[16..24]);
    let mut hb = [0u8; TAG_LEN];
    hb.copy_from_slice(&r[24..32]);
    let x = unpack_number(x)?;
    Ok(Record {
        gen,
        created: dec6(&r[3..9]),
        expires: dec6(&r[9..15]),
        state: match r[15] {
            b'a' => BindingState::Active,
            b'd' => BindingState::Delivered,
            _ => return Err(bad()),
        },
        ha,
        hb,
        x: digits(&x).to_owned(),
        extension,
        shipment: String::from_utf8(ship.to_vec()).map_err(|_| bad())?,
    })
}

/// A decoded route value: binding id, routing end, sealed callee (empty while the
/// key is only a cooling hold).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteValue<'a> {
    /// The binding.
    pub id: BindingId,
    /// Routes while `now < until`.
    pub until: UnixMs,
    /// The callee, sealed with the pool name as context.
    pub sealed: &'a [u8],
}

/// Decodes a route value (`id(16) until(6) sealed`).
pub fn parse_route(v: &[u8]) -> Result<RouteValue<'_>, CodecError> {
    if v.len() < 22 {
        return Err(CodecError::Malformed("route value"));
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&v[..16]);
    Ok(RouteValue {
        id: Uuid::from_bytes(id),
        until: dec6(&v[16..22]),
        sealed: &v[22..],
    })
}

/// Packs a number's digits two per byte (BCD, `0xF` pads an odd count), so a sealed
/// number costs 8 bytes of plaintext instead of 16.
pub fn pack_number(n: &E164) -> Vec<u8> {
    let d = digits(n).as_bytes();
    d.chunks(2)
        .map(|c| {
            let hi = c[0] - b'0';
            let lo = c.get(1).map(|x| x - b'0').unwrap_or(0x0F);
            (hi << 4) | lo
        })
        .collect()
}

/// Digits of BCD bytes (`0xF` nibbles pad).
fn unpack_digits(b: &[u8]) -> Result<String, CodecError> {
    let mut s = String::with_capacity(b.len() * 2);
    unpack_digits_into(b, &mut s)?;
    Ok(s)
}

/// [`unpack_digits`] appending to `s`.
fn unpack_digits_into(b: &[u8], s: &mut String) -> Result<(), CodecError> {
    for &x in b {
        for nib in [x >> 4, x & 0x0F] {
            match nib {
                0..=9 => s.push(char::from(b'0' + nib)),
                0x0F => {}
                _ => return Err(CodecError::Malformed("packed number")),
            }
        }
    }
    Ok(())
}

/// Reverses [`pack_number`].
pub fn unpack_number(b: &[u8]) -> Result<E164, CodecError> {
    let mut s = String::with_capacity(b.len() * 2 + 1);
    s.push('+');
    unpack_digits_into(b, &mut s)?;
    E164::parse(&s).map_err(|_| CodecError::Malformed("packed number"))
}

/// Decodes number info `<state a|r|q><caps 0-3><area>`: (state, voice, sms, area).
pub fn parse_number_info(
    v: &[u8],
) -> Result<(NumberState, bool, bool, Option<String>), CodecError> {
    let bad = || CodecError::Malformed("number info");
    if v.len() < 2 {
        return Err(bad());
    }
    let state = match v[0] {
        b'a' => NumberState::Active,
        b'r' => NumberState::Retired,
        b'q' => NumberState::Quarantined,
        _ => return Err(bad()),
    };
    let caps = v[1].checked_sub(b'0').filter(|c| *c <= 3).ok_or_else(bad)?;
    let area = std::str::from_utf8(&v[2..]).map_err(|_| bad())?;
    Ok((
        state,
        caps & 1 != 0,
        caps & 2 != 0,
        (!area.is_empty()).then(|| area.to_owned()),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ids_round_trip_and_foreign_ids_are_rejected() {
        let p = IdParts {
            sh: shipment_hash("p", "SF1"),
            pid: 0x00AB_CDEF,
            gen: [1, 2, 3],
        };
        let id = make_id(&p);
        assert_eq!(id.get_version_num(), 8);
        assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
        assert_eq!(split_id(&id), Some(p));
        assert_eq!(split_id(&Uuid::now_v7()), None);
    }

    #[test]
    fn records_decode_the_lua_layout() {
        let mut r = vec![9, 8, 7];
        r.extend_from_slice(&[0, 0, 0, 0, 1, 2]); // created = 258
        r.extend_from_slice(&[0, 0, 0, 0, 1, 3]); // expires = 259
        r.push(b'd');
        r.extend_from_slice(&[0xAA; 8]);
        r.extend_from_slice(&[0xBB; 8]);
        r.push(7);
        r.extend_from_slice(&[0x86, 0x17, 0x01, 0x23, 0x45, 0x67, 0x8F]);
        r.extend_from_slice(b"SF-1");
        let rec = parse_record(&r).unwrap();
        assert_eq!(rec.gen, [9, 8, 7]);
        assert_eq!((rec.created, rec.expires), (258, 259));
        assert_eq!(rec.state, BindingState::Delivered);
        assert_eq!((rec.ha, rec.hb), ([0xAA; 8], [0xBB; 8]));
        assert_eq!(rec.x, "8617012345678");
        assert_eq!(rec.shipment, "SF-1");
        assert_eq!(rec.extension, None);
        assert!(parse_record(&r[..30]).is_err());
        // With a 5-digit extension "05821": lens = 7 + 16 * 5, three BCD bytes.
        let mut e = r[..32].to_vec();
        e.push(7 + 16 * 5);
        e.extend_from_slice(&[0x86, 0x17, 0x01, 0x23, 0x45, 0x67, 0x8F]);
        e.extend_from_slice(&[0x05, 0x82, 0x1F]);
        e.extend_from_slice(b"SF-1");
        let rec = parse_record(&e).unwrap();
        assert_eq!(rec.x, "8617012345678");
        assert_eq!(rec.extension.as_deref(), Some("05821"));
        assert_eq!(rec.shipment, "SF-1");
    }

    #[test]
    fn numbers_pack_into_half_the_bytes() {
        for s in ["+8613812345678", "+14155550123", "+442079460958"] {
            let n = E164::parse(s).unwrap();
            let p = pack_number(&n);
            assert_eq!(p.len(), (s.len() - 1).div_ceil(2));
            assert_eq!(unpack_number(&p).unwrap(), n);
        }
        assert!(unpack_number(&[0xAB]).is_err());
    }

    #[test]
    fn route_values_and_number_info_decode() {
        let id = Uuid::now_v7();
        let mut v = id.as_bytes().to_vec();
        v.extend_from_slice(&[0, 0, 0, 0, 0, 7]);
        v.extend_from_slice(b"sealed");
        let r = parse_route(&v).unwrap();
        assert_eq!((r.id, r.until, r.sealed), (id, 7, &b"sealed"[..]));
        assert!(parse_route(&v[..21]).is_err());
        assert_eq!(
            parse_number_info(b"r1sh").unwrap(),
            (NumberState::Retired, true, false, Some("sh".into()))
        );
        assert_eq!(
            parse_number_info(b"a3").unwrap(),
            (NumberState::Active, true, true, None)
        );
        assert_eq!(
            parse_number_info(b"q0").unwrap().0,
            NumberState::Quarantined
        );
    }
}
