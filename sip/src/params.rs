//! Semicolon-separated parameter lists (`;name=value;flag`), as found in
//! URIs, Via, From/To, Contact and most other SIP headers.
//!
//! Parameters are kept as one borrowed slice and scanned on lookup: real
//! messages carry a handful of parameters, so a linear scan beats building a
//! map, and unknown parameters stay byte-exact for pass-through.
#![deny(clippy::indexing_slicing)]

use crate::scan::{find_unquoted, same_ic, split_byte, trim};

/// One parameter: a name and, unless it is a flag, a raw value (quotes kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param<'a> {
    /// Parameter name as written.
    pub name: &'a str,
    /// Raw value, `None` for a flag such as `;lr` or `;rport`.
    pub value: Option<&'a str>,
}

/// A borrowed parameter list: the text after the first `;`, e.g.
/// `branch=z9hG4bK1;rport;received=192.0.2.1`.
///
/// ```
/// use maskline_sip::Params;
///
/// let p = Params::new("branch=z9hG4bK1;RPORT;received=192.0.2.1");
/// assert_eq!(p.value("branch"), Some("z9hG4bK1"));
/// assert!(p.has("rport"));
/// assert_eq!(p.value("rport"), None);
/// assert_eq!(p.iter().count(), 3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params<'a> {
    raw: &'a str,
}

impl<'a> Params<'a> {
    /// Wraps a raw parameter list (without the leading `;`).
    #[must_use]
    pub fn new(raw: &'a str) -> Self {
        Self { raw }
    }

    /// The raw text, exactly as received.
    #[must_use]
    pub fn as_str(&self) -> &'a str {
        self.raw
    }

    /// True when there are no parameters.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        trim(self.raw).is_empty()
    }

    /// Iterates over the parameters in order.
    #[must_use]
    pub fn iter(&self) -> ParamIter<'a> {
        ParamIter {
            rest: Some(self.raw),
        }
    }

    /// Looks a parameter up by name, case-insensitively.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<Param<'a>> {
        self.iter().find(|p| same_ic(p.name, name))
    }

    /// True when the parameter is present (with or without a value).
    #[must_use]
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The raw value of a parameter; `None` when absent or a flag.
    #[must_use]
    pub fn value(&self, name: &str) -> Option<&'a str> {
        self.get(name).and_then(|p| p.value)
    }
}

impl<'a> IntoIterator for Params<'a> {
    type Item = Param<'a>;
    type IntoIter = ParamIter<'a>;
    fn into_iter(self) -> ParamIter<'a> {
        self.iter()
    }
}

/// Iterator over [`Params`].
#[derive(Debug, Clone)]
pub struct ParamIter<'a> {
    rest: Option<&'a str>,
}

impl<'a> Iterator for ParamIter<'a> {
    type Item = Param<'a>;

    #[inline]
    fn next(&mut self) -> Option<Param<'a>> {
        loop {
            let rest = self.rest?;
            // An unterminated quote swallows the remainder as one parameter.
            let (item, next) = match find_unquoted(rest, b';') {
                Ok(Some(i)) => (rest.get(..i)?, rest.get(i + 1..)),
                _ => (rest, None),
            };
            self.rest = next;
            let item = trim(item);
            if item.is_empty() {
                continue;
            }
            return Some(match split_byte(item, b'=') {
                Some((n, v)) => Param {
                    name: trim(n),
                    value: Some(trim(v)),
                },
                None => Param {
                    name: item,
                    value: None,
                },
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flags_values_and_spacing() {
        let p = Params::new(" tag = abc ; lr ;; x=\"a;b\"");
        let all: Vec<_> = p.iter().collect();
        assert_eq!(all.len(), 3);
        assert_eq!(p.value("TAG"), Some("abc"));
        assert!(p.has("lr"));
        assert_eq!(p.value("x"), Some("\"a;b\""));
        assert!(!p.has("maddr"));
    }

    #[test]
    fn empty_list() {
        assert!(Params::new("").is_empty());
        assert_eq!(Params::new("  ").iter().count(), 0);
    }
}
