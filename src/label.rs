//! What a waybill prints for a binding: the customer's number with at least six
//! digits hidden (GB/T 41832), the virtual number and extension formatted for
//! the label, the `tel:` dial string, and a QR code of it as SVG.
//!
//! The hiding rule keeps `keep_first` leading and `keep_last` trailing digits of
//! the national number (default 3 and 2: `139******00`) and hides the rest, but
//! never fewer than [`MIN_HIDDEN`] digits: on short numbers it keeps fewer
//! digits, last digits first, down to hiding everything.

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

use crate::numbers::E164;

/// The fewest digits a printed number hides.
pub const MIN_HIDDEN: usize = 6;

/// Which digits of the customer's number stay visible on a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaskRule {
    /// Leading digits kept.
    pub keep_first: usize,
    /// Trailing digits kept.
    pub keep_last: usize,
}

impl Default for MaskRule {
    fn default() -> Self {
        Self {
            keep_first: 3,
            keep_last: 2,
        }
    }
}

/// Errors building a label.
#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    /// The QR code cannot hold the dial string (never for real numbers).
    #[error("qr code: {0}")]
    Qr(String),
}

impl MaskRule {
    /// `digits` with at least [`MIN_HIDDEN`] of them replaced by `*`.
    pub fn hide(&self, digits: &str) -> String {
        let n = digits.chars().count();
        let mut first = self.keep_first.min(n);
        let mut last = self.keep_last.min(n - first);
        while n - first - last < MIN_HIDDEN.min(n) {
            if last > 0 {
                last -= 1;
            } else if first > 0 {
                first -= 1;
            } else {
                break;
            }
        }
        digits
            .chars()
            .enumerate()
            .map(|(i, c)| if i < first || i >= n - last { c } else { '*' })
            .collect()
    }
}

/// The national significant number of `n` (digits after the country code).
pub fn national(n: &E164) -> &str {
    let cc = n.country_code().len();
    n.expose().get(1 + cc..).unwrap_or("")
}

/// A national number grouped for print: `171 0000 1234` for 11 digits, else
/// groups of four from the left.
pub fn group(digits: &str) -> String {
    let sizes: Vec<usize> = if digits.len() == 11 {
        vec![3, 4, 4]
    } else {
        (0..digits.len().div_ceil(4))
            .map(|i| 4.min(digits.len() - 4 * i))
            .collect()
    };
    let mut out = Vec::new();
    let mut at = 0;
    for s in sizes {
        out.push(digits.get(at..at + s).unwrap_or(""));
        at += s;
    }
    out.join(" ")
}

/// The printed line: `171 0000 1234 转 5821` (`ext.` outside country 86).
pub fn printed(number: &E164, extension: Option<&str>) -> String {
    let x = group(national(number));
    match extension {
        Some(e) if number.country_code() == "86" => format!("{x} 转 {e}"),
        Some(e) => format!("{x} ext. {e}"),
        None => x,
    }
}

/// The `tel:` URI a phone dials: `tel:+8617100001234,5821` (the comma pauses
/// before keying the extension).
pub fn dial_string(number: &E164, extension: Option<&str>) -> String {
    match extension {
        Some(e) => format!("tel:{},{e}", number.expose()),
        None => format!("tel:{}", number.expose()),
    }
}

/// The QR code of `text` as a standalone SVG document (4-module quiet zone).
pub fn qr_svg(text: &str) -> Result<String, LabelError> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .map_err(|e| LabelError::Qr(e.to_string()))?;
    Ok(code
        .render::<svg::Color<'_>>()
        .min_dimensions(160, 160)
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn labels_read_as_printed() {
        let x = E164::parse("+8617100001234").unwrap();
        assert_eq!(printed(&x, Some("5821")), "171 0000 1234 转 5821");
        assert_eq!(dial_string(&x, Some("5821")), "tel:+8617100001234,5821");
        assert_eq!(dial_string(&x, None), "tel:+8617100001234");
        let us = E164::parse("+14155550123").unwrap();
        assert_eq!(printed(&us, Some("12")), "4155 5501 23 ext. 12");
        assert_eq!(MaskRule::default().hide("13900139001"), "139******01");
        assert_eq!(MaskRule::default().hide("4155550123"), "415******3");
        assert_eq!(MaskRule::default().hide("1234567"), "1******");
        assert_eq!(MaskRule::default().hide("12345"), "*****");
        assert!(qr_svg("tel:+8617100001234,5821")
            .unwrap()
            .starts_with("<?xml"));
    }
}
