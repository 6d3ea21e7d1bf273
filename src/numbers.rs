//! Phone numbers and the secrets that protect them.
//!
//! Owns the [`E164`] type (parsing, masked display, explicit exposure), the keyed hash
//! ([`NumberHasher`], HMAC-SHA256) used to derive store keys from numbers, and the
//! sealer ([`Sealer`], AES-256-GCM with a key id in every blob) used for numbers at rest.
//!
//! Privacy is enforced by type, not by discipline: `E164`'s `Debug` and `Display`
//! print the masked form (`+86 138****5678`), and the digits are only reachable through
//! [`E164::expose`], which is easy to grep for.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

/// Errors from parsing numbers or handling sealed blobs.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NumberError {
    /// The input is not an E.164 number.
    #[error("not an E.164 number: {0}")]
    Invalid(&'static str),
    /// A sealed blob could not be opened (wrong key, tampering, truncation).
    #[error("sealed value could not be opened")]
    Unseal,
    /// A sealed blob names a key id that is not configured.
    #[error("sealed value uses unknown key id {0}")]
    UnknownKey(u8),
    /// A secret from configuration is unusable.
    #[error("bad secret: {0}")]
    BadSecret(&'static str),
}

/// Country calling codes (ITU-T E.164 assigned codes). Used to split a number into
/// country code and national number for masked display. Unknown prefixes fall back
/// to a one-digit split, which is still masked safely.
fn country_code_len(digits: &str) -> usize {
    // Two-digit codes, as a bit per value 0..=99.
    const TWO: [u8; 44] = [
        20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46, 47, 48, 49, 51, 52, 53, 54, 55,
        56, 57, 58, 60, 61, 62, 63, 64, 65, 66, 81, 82, 84, 86, 90, 91, 92, 93, 94, 95, 98,
    ];
    const TWO_SET: u128 = {
        let mut set = 0u128;
        let mut i = 0;
        while i < TWO.len() {
            set |= 1 << TWO[i];
            i += 1;
        }
        set
    };
    match digits.as_bytes() {
        // One-digit codes: 1 (NANP), 7 (Russia/Kazakhstan).
        [b'1' | b'7', ..] => 1,
        [a @ b'0'..=b'9', b @ b'0'..=b'9', ..]
            if TWO_SET & (1 << ((a - b'0') * 10 + (b - b'0'))) != 0 =>
        {
            2
        }
        _ => 3,
    }
}

/// A phone number in E.164 form (`+` and 8–15 digits, first digit not 0).
///
/// `Display`/`Debug` are masked: the country code, the first three and the last four
/// digits of the national number stay visible (`+86 138****5678`).
///
/// ```
/// use maskline::numbers::E164;
/// let n: E164 = "+8613812345678".parse().unwrap();
/// assert_eq!(n.to_string(), "+86 138****5678");
/// assert_eq!(n.expose(), "+8613812345678");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct E164 {
    /// Always `+` followed by digits.
    raw: Box<str>,
}

impl E164 {
    /// Parses strict E.164: `+`, then 8 to 15 digits, the first not `0`.
    pub fn parse(s: &str) -> Result<Self, NumberError> {
        let digits = s.strip_prefix('+').ok_or(NumberError::Invalid(
            "must start with '+' and a country code",
        ))?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(NumberError::Invalid("only digits may follow '+'"));
        }
        if digits.len() < 8 || digits.len() > 15 {
            return Err(NumberError::Invalid("must have 8 to 15 digits"));
        }
        if digits.starts_with('0') {
            return Err(NumberError::Invalid("country code cannot start with 0"));
        }
        Ok(Self { raw: s.into() })
    }

    /// Parses user input: strict E.164, or, when `country_code` is given (the pool's
    /// country, e.g. `86`), a national number that is unambiguous for that country.
    /// Spaces, dashes, dots and parentheses are ignored. A national number starting with
    /// a trunk prefix `0` has it removed (`0xx...` → `+CCxx...`); `00` international
    /// prefix is accepted as `+`.
    pub fn parse_lenient(s: &str, country_code: Option<u16>) -> Result<Self, NumberError> {
        let cleaned: String = s
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
            .collect();
        if cleaned.starts_with('+') {
            return Self::parse(&cleaned);
        }
        if let Some(rest) = cleaned.strip_prefix("00") {
            return Self::parse(&format!("+{rest}"));
        }
        let Some(cc) = country_code else {
            return Err(NumberError::Invalid(
                "must start with '+' and a country code",
            ));
        };
        let national = cleaned.strip_prefix('0').unwrap_or(&cleaned);
        if national.is_empty() || !national.bytes().all(|b| b.is_ascii_digit()) {
            return Err(NumberError::Invalid("only digits are allowed"));
        }
        let cc_s = cc.to_string();
        // A national number that already begins with the country code is ambiguous
        // unless its length says otherwise; insist on '+' then.
        if national.starts_with(&cc_s) && national.len() > 11 {
            return Err(NumberError::Invalid(
                "ambiguous: write it with '+' and the country code",
            ));
        }
        Self::parse(&format!("+{cc_s}{national}"))
    }

    /// The raw number, `+` and digits. Every call site is a deliberate disclosure:
    /// use it only to hash, seal, or send the number to a carrier.
    pub fn expose(&self) -> &str {
        &self.raw
    }

    /// Digits without the `+`.
    pub fn digits(&self) -> &str {
        self.raw.get(1..).unwrap_or("")
    }

    /// The masked display form, e.g. `+86 138****5678`.
    pub fn masked(&self) -> String {
        let digits = self.digits();
        let cc_len = country_code_len(digits).min(digits.len());
        let (cc, national) = digits.split_at(cc_len);
        let n = national.len();
        // Keep first three and last four; if the national number is too short for
        // that, keep fewer so at least half is hidden.
        let (head, tail) = if n >= 9 {
            (3, 4)
        } else if n >= 6 {
            (2, 2)
        } else {
            (0, 1.min(n))
        };
        let stars = n.saturating_sub(head + tail);
        let mut out = String::with_capacity(cc.len() + n + 2);
        out.push('+');
        out.push_str(cc);
        out.push(' ');
        out.push_str(national.get(..head).unwrap_or(""));
        out.extend(std::iter::repeat_n('*', stars));
        out.push_str(national.get(n - tail..).unwrap_or(""));
        out
    }

    /// The country calling code, as digits.
    pub fn country_code(&self) -> &str {
        let digits = self.digits();
        let l = country_code_len(digits).min(digits.len());
        digits.get(..l).unwrap_or("")
    }
}

impl std::str::FromStr for E164 {
    type Err = NumberError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "E164({})", self.masked())
    }
}

/// Keyed hash of numbers (HMAC-SHA256), used for store keys so a store dump reveals
/// no number and a dictionary attack needs the secret.
#[derive(Clone)]
pub struct NumberHasher {
    mac: Hmac<Sha256>,
}

/// Length in bytes of the hash kept in keys (128 bits: collision-free for any pool).
pub const HASH_LEN: usize = 16;

impl NumberHasher {
    /// Builds a hasher from a secret of at least 32 bytes.
    pub fn new(secret: &[u8]) -> Result<Self, NumberError> {
        if secret.len() < 32 {
            return Err(NumberError::BadSecret("hmac key must be at least 32 bytes"));
        }
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
            .map_err(|_| NumberError::BadSecret("hmac key rejected"))?;
        Ok(Self { mac })
    }

    /// The truncated keyed hash of a number.
    pub fn hash(&self, n: &E164) -> [u8; HASH_LEN] {
        let mut mac = self.mac.clone();
        mac.update(n.expose().as_bytes());
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; HASH_LEN];
        out.copy_from_slice(&full[..HASH_LEN]);
        out
    }

    /// The keyed hash as lowercase hex (for places that need text).
    pub fn hash_hex(&self, n: &E164) -> String {
        hex::encode(self.hash(n))
    }
}

impl fmt::Debug for NumberHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NumberHasher(..)")
    }
}

/// AES-256-GCM sealing with key rotation: blobs are `key_id (1) | nonce (12) | ct+tag`.
/// The newest key (the first configured) seals; every configured key can open.
#[derive(Clone)]
pub struct Sealer {
    /// (key id, cipher); index 0 seals.
    keys: Vec<(u8, Aes256Gcm)>,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<u8> = self.keys.iter().map(|(id, _)| *id).collect();
        write!(f, "Sealer(key ids {ids:?})")
    }
}

impl Sealer {
    /// Builds a sealer from `(key id, 32-byte key)` pairs; the first one seals.
    pub fn new(keys: &[(u8, Zeroizing<Vec<u8>>)]) -> Result<Self, NumberError> {
        if keys.is_empty() {
            return Err(NumberError::BadSecret("at least one seal key is required"));
        }
        let mut out = Vec::with_capacity(keys.len());
        for (id, key) in keys {
            if key.len() != 32 {
                return Err(NumberError::BadSecret("seal keys must be 32 bytes"));
            }
            if out.iter().any(|(i, _)| i == id) {
                return Err(NumberError::BadSecret("duplicate seal key id"));
            }
            let cipher = Aes256Gcm::new_from_slice(key)
                .map_err(|_| NumberError::BadSecret("seal key rejected"))?;
            out.push((*id, cipher));
        }
        Ok(Self { keys: out })
    }

    /// A sealer with one random key (development and tests).
    pub fn random() -> Self {
        let mut key = Zeroizing::new(vec![0u8; 32]);
        rand::rng().fill_bytes(&mut key);
        #[allow(clippy::expect_used)]
        Self::new(&[(1, key)]).expect("a random 32-byte key is always valid")
    }

    /// Seals `plain`, binding it to `context` (associated data, e.g. the pool name),
    /// so a blob copied to another context does not open.
    pub fn seal(&self, plain: &[u8], context: &[u8]) -> Vec<u8> {
        let Some((id, cipher)) = self.keys.first() else {
            return Vec::new();
        };
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        // Encryption with a valid key and in-memory buffers cannot fail.
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: context,
                },
            )
            .unwrap_or_default();
        let mut out = Vec::with_capacity(1 + 12 + ct.len());
        out.push(*id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Opens a blob made by [`Sealer::seal`] with the same context.
    pub fn open(&self, blob: &[u8], context: &[u8]) -> Result<Vec<u8>, NumberError> {
        if blob.len() < 1 + 12 + 16 {
            return Err(NumberError::Unseal);
        }
        let id = blob[0];
        let (_, cipher) = self
            .keys
            .iter()
            .find(|(i, _)| *i == id)
            .ok_or(NumberError::UnknownKey(id))?;
        cipher
            .decrypt(
                Nonce::from_slice(&blob[1..13]),
                Payload {
                    msg: &blob[13..],
                    aad: context,
                },
            )
            .map_err(|_| NumberError::Unseal)
    }

    /// Seals a number.
    pub fn seal_number(&self, n: &E164, context: &[u8]) -> Vec<u8> {
        self.seal(n.expose().as_bytes(), context)
    }

    /// Opens a sealed number.
    pub fn open_number(&self, blob: &[u8], context: &[u8]) -> Result<E164, NumberError> {
        let plain = self.open(blob, context)?;
        let s = std::str::from_utf8(&plain).map_err(|_| NumberError::Unseal)?;
        E164::parse(s).map_err(|_| NumberError::Unseal)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn strict_parse_accepts_e164_and_rejects_the_rest() {
        assert!(E164::parse("+8613812345678").is_ok());
        assert!(E164::parse("+14155550123").is_ok());
        for bad in [
            "8613812345678",
            "+0861381234",
            "+86 138 1234 5678",
            "+861",
            "+1234567890123456",
            "",
            "+",
            "+86138abc5678",
        ] {
            assert!(E164::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn display_and_debug_are_masked() {
        let n = E164::parse("+8613812345678").unwrap();
        assert_eq!(n.to_string(), "+86 138****5678");
        assert_eq!(format!("{n:?}"), "E164(+86 138****5678)");
        assert!(!format!("{n:?}").contains("13812345678"));
        let us = E164::parse("+14155550123").unwrap();
        assert_eq!(us.to_string(), "+1 415***0123");
        let de = E164::parse("+4930123456").unwrap();
        assert_eq!(de.country_code(), "49");
        assert!(!de.to_string().contains("30123456"));
    }

    #[test]
    fn country_codes_have_their_itu_lengths() {
        let two = [
            "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45",
            "46", "47", "48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61",
            "62", "63", "64", "65", "66", "81", "82", "84", "86", "90", "91", "92", "93", "94",
            "95", "98",
        ];
        for p in 10..100 {
            let digits = format!("{p}12345678");
            let want = if digits.starts_with(['1', '7']) {
                1
            } else if two.iter().any(|c| digits.starts_with(c)) {
                2
            } else {
                3
            };
            assert_eq!(country_code_len(&digits), want, "{digits}");
        }
        assert_eq!(country_code_len("8"), 3);
        assert_eq!(country_code_len(""), 3);
    }

    #[test]
    fn lenient_parse_uses_pool_country() {
        let n = E164::parse_lenient("138 1234 5678", Some(86)).unwrap();
        assert_eq!(n.expose(), "+8613812345678");
        let n = E164::parse_lenient("0044 20 7946 0958", None).unwrap();
        assert_eq!(n.expose(), "+442079460958");
        let n = E164::parse_lenient("(020) 7946-0958", Some(44)).unwrap();
        assert_eq!(n.expose(), "+442079460958");
        assert!(E164::parse_lenient("13812345678", None).is_err());
    }

    #[test]
    fn hash_is_keyed_and_stable() {
        let a = NumberHasher::new(&[7u8; 32]).unwrap();
        let b = NumberHasher::new(&[8u8; 32]).unwrap();
        let n = E164::parse("+8613812345678").unwrap();
        assert_eq!(a.hash(&n), a.hash(&n));
        assert_ne!(a.hash(&n), b.hash(&n));
        assert!(NumberHasher::new(&[1u8; 8]).is_err());
    }

    #[test]
    fn seal_round_trips_and_rotates() {
        let old = Sealer::new(&[(1, Zeroizing::new(vec![1u8; 32]))]).unwrap();
        let n = E164::parse("+8613812345678").unwrap();
        let blob = old.seal_number(&n, b"pool-a");
        assert!(!blob.windows(11).any(|w| w == b"13812345678"));
        assert_eq!(old.open_number(&blob, b"pool-a").unwrap(), n);
        // Wrong context does not open.
        assert_eq!(old.open_number(&blob, b"pool-b"), Err(NumberError::Unseal));
        // New key seals, old key still opens.
        let rotated = Sealer::new(&[
            (2, Zeroizing::new(vec![2u8; 32])),
            (1, Zeroizing::new(vec![1u8; 32])),
        ])
        .unwrap();
        assert_eq!(rotated.open_number(&blob, b"pool-a").unwrap(), n);
        let newer = rotated.seal_number(&n, b"pool-a");
        assert_eq!(newer[0], 2);
        assert_eq!(
            old.open_number(&newer, b"pool-a"),
            Err(NumberError::UnknownKey(2))
        );
        // Tampering is detected.
        let mut bad = blob.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(old.open_number(&bad, b"pool-a"), Err(NumberError::Unseal));
    }
}
