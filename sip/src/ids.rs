//! Random identifiers: Via branches, From/To tags and Call-IDs.
//!
//! A privacy relay must not leak anything through its identifiers, and a
//! guessable branch or tag lets an off-path attacker inject CANCEL/BYE. All
//! ids come from the thread-local CSPRNG (`rand::rng()`, ChaCha seeded from
//! the OS) and carry no host name, counter or timestamp.
#![deny(clippy::indexing_slicing)]

use rand::RngCore;

use crate::via::BRANCH_MAGIC_COOKIE;

const HEX: &[u8; 16] = b"0123456789abcdef";

fn random_hex(prefix: &str, bytes: usize) -> String {
    let mut raw = [0u8; 32];
    let raw = raw.get_mut(..bytes.min(32)).unwrap_or_default();
    rand::rng().fill_bytes(raw);
    let mut s = String::with_capacity(prefix.len() + raw.len() * 2);
    s.push_str(prefix);
    for b in raw.iter() {
        for nibble in [b >> 4, b & 0x0f] {
            s.push(char::from(
                HEX.get(usize::from(nibble)).copied().unwrap_or(b'0'),
            ));
        }
    }
    s
}

/// A new Via branch: the RFC 3261 magic cookie followed by 96 random bits.
///
/// ```
/// let b = maskline_sip::new_branch();
/// assert!(b.starts_with("z9hG4bK"));
/// assert_eq!(b.len(), 7 + 24);
/// assert_ne!(b, maskline_sip::new_branch());
/// ```
#[must_use]
pub fn new_branch() -> String {
    random_hex(BRANCH_MAGIC_COOKIE, 12)
}

/// A new From/To tag carrying 96 random bits.
///
/// ```
/// let t = maskline_sip::new_tag();
/// assert_eq!(t.len(), 24);
/// ```
#[must_use]
pub fn new_tag() -> String {
    random_hex("", 12)
}

/// [`new_tag`] after `prefix`, in one allocation (a relay that marks its tags,
/// for example with the shard that holds the dialog).
///
/// ```
/// let t = maskline_sip::new_tag_with_prefix("s1");
/// assert!(t.starts_with("s1"));
/// assert_eq!(t.len(), 2 + 24);
/// ```
#[must_use]
pub fn new_tag_with_prefix(prefix: &str) -> String {
    random_hex(prefix, 12)
}

/// [`new_call_id`] after `prefix`, in one allocation.
///
/// ```
/// let c = maskline_sip::new_call_id_with_prefix("s1");
/// assert!(c.starts_with("s1"));
/// assert_eq!(c.len(), 2 + 32);
/// ```
#[must_use]
pub fn new_call_id_with_prefix(prefix: &str) -> String {
    random_hex(prefix, 16)
}

/// A new Call-ID carrying 128 random bits and no host part.
///
/// ```
/// let c = maskline_sip::new_call_id();
/// assert_eq!(c.len(), 32);
/// ```
#[must_use]
pub fn new_call_id() -> String {
    random_hex("", 16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_hex_and_distinct() {
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            let b = new_branch();
            assert!(b[7..].bytes().all(|c| c.is_ascii_hexdigit()));
            assert!(seen.insert(b));
        }
        assert!(new_call_id().bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
