//! Text on the wire: decoding `short_message` bytes by `data_coding` (GSM 03.38
//! 7-bit unpacked with its extension table, Latin-1, UCS-2), reading the
//! concatenation header (UDH IEI 0x00/0x08), and counting segments the way a
//! handset is billed (160/153 GSM characters, 70/67 UCS-2 units; an extension
//! character costs two septets). Encoding and splitting for `submit_sm` is done by
//! `rusmpp-extra` (see [`super::smpp`]); this module only reads and counts.

/// The GSM 03.38 default alphabet, indexed by septet.
const GSM_BASIC: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1b}', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// The extension table (after ESC 0x1B): septet → character.
const GSM_EXT: [(u8, char); 10] = [
    (0x0A, '\u{c}'),
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x65, '€'),
];

/// Septets a character costs in GSM 7-bit (1 or 2), or `None` if it has no GSM form.
pub fn gsm_septets(c: char) -> Option<usize> {
    if c != '\u{1b}' && GSM_BASIC.contains(&c) {
        Some(1)
    } else if GSM_EXT.iter().any(|(_, e)| *e == c) {
        Some(2)
    } else {
        None
    }
}

/// Decodes GSM 7-bit unpacked (one septet per byte).
pub fn decode_gsm7(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut esc = false;
    for &b in bytes {
        let b = b & 0x7F;
        if esc {
            esc = false;
            match GSM_EXT.iter().find(|(s, _)| *s == b) {
                Some((_, c)) => out.push(*c),
                None => out.push(GSM_BASIC[usize::from(b)]),
            }
        } else if b == 0x1B {
            esc = true;
        } else {
            out.push(GSM_BASIC[usize::from(b)]);
        }
    }
    out
}

/// Decodes UCS-2 / UTF-16BE (surrogate pairs joined; lone halves become U+FFFD).
pub fn decode_ucs2(bytes: &[u8]) -> String {
    let units = bytes
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]));
    char::decode_utf16(units)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// Decodes a `short_message` (without UDH) by its `data_coding`: 0 (SMSC default,
/// taken as GSM 7-bit unpacked), 1 (IA5/ASCII), 3 (Latin-1), 8 (UCS-2); other
/// codings are read as Latin-1.
pub fn decode(data_coding: u8, bytes: &[u8]) -> String {
    match data_coding {
        0x00 => decode_gsm7(bytes),
        0x08 => decode_ucs2(bytes),
        0x01 => bytes.iter().map(|&b| char::from(b & 0x7F)).collect(),
        _ => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

/// One part of a concatenated message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concat {
    /// Reference number shared by the parts.
    pub reference: u16,
    /// Number of parts.
    pub total: u8,
    /// This part, 1-based.
    pub seq: u8,
}

/// Splits a UDH off `sm` (when `udhi` is set) and returns the concatenation info, if
/// any, and the payload after the header.
pub fn split_udh(udhi: bool, sm: &[u8]) -> (Option<Concat>, &[u8]) {
    if !udhi || sm.is_empty() {
        return (None, sm);
    }
    let udhl = usize::from(sm[0]);
    let Some(header) = sm.get(1..=udhl) else {
        return (None, sm);
    };
    let payload = sm.get(udhl + 1..).unwrap_or(&[]);
    let mut i = 0;
    let mut concat = None;
    while i + 1 < header.len() {
        let (iei, len) = (header[i], usize::from(header[i + 1]));
        let Some(data) = header.get(i + 2..i + 2 + len) else {
            break;
        };
        match (iei, data) {
            (0x00, [r, t, s]) => {
                concat = Some(Concat {
                    reference: u16::from(*r),
                    total: *t,
                    seq: *s,
                })
            }
            (0x08, [r1, r2, t, s]) => {
                concat = Some(Concat {
                    reference: u16::from_be_bytes([*r1, *r2]),
                    total: *t,
                    seq: *s,
                })
            }
            _ => {}
        }
        i += 2 + len;
    }
    (
        concat.filter(|c| c.total >= 1 && c.seq >= 1 && c.seq <= c.total),
        payload,
    )
}

/// How many SMS a text takes: GSM 7-bit when every character has a GSM form (160
/// septets alone, 153 per part), else UCS-2 (70 units alone, 67 per part).
pub fn segments(text: &str) -> usize {
    let gsm: Option<usize> = text.chars().map(gsm_septets).sum();
    let (len, single, multi) = match gsm {
        Some(septets) => (septets, 160, 153),
        None => (text.encode_utf16().count(), 70, 67),
    };
    if len <= single {
        1
    } else {
        len.div_ceil(multi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm7_decodes_extension_characters() {
        // "€10 [a]" : ESC 0x65, '1', '0', ' ', ESC 0x3C, 'a', ESC 0x3E
        let bytes = [0x1B, 0x65, 0x31, 0x30, 0x20, 0x1B, 0x3C, 0x61, 0x1B, 0x3E];
        assert_eq!(decode_gsm7(&bytes), "€10 [a]");
        assert_eq!(decode(0, b"Hello @"), "Hello ¡");
        assert_eq!(decode_gsm7(&[0x00, 0x11]), "@_");
    }

    #[test]
    fn ucs2_decodes_chinese_and_surrogates() {
        let bytes: Vec<u8> = "快递到了😀"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        assert_eq!(decode(8, &bytes), "快递到了😀");
    }

    #[test]
    fn udh_concat_8_and_16_bit() {
        let sm = [0x05, 0x00, 0x03, 0x2A, 0x03, 0x02, b'h', b'i'];
        let (c, p) = split_udh(true, &sm);
        assert_eq!(
            c,
            Some(Concat {
                reference: 0x2A,
                total: 3,
                seq: 2
            })
        );
        assert_eq!(p, b"hi");
        let sm = [0x06, 0x08, 0x04, 0x01, 0x02, 0x02, 0x01, b'x'];
        let (c, p) = split_udh(true, &sm);
        assert_eq!(
            c.map(|c| (c.reference, c.total, c.seq)),
            Some((0x0102, 2, 1))
        );
        assert_eq!(p, b"x");
        assert_eq!(split_udh(false, &sm).0, None);
    }

    #[test]
    fn segment_counts_follow_gsm_and_ucs2_limits() {
        assert_eq!(segments(&"a".repeat(160)), 1);
        assert_eq!(segments(&"a".repeat(161)), 2);
        assert_eq!(segments(&"a".repeat(306)), 2);
        assert_eq!(segments(&"a".repeat(307)), 3);
        // Extension characters cost two septets.
        assert_eq!(segments(&"€".repeat(80)), 1);
        assert_eq!(segments(&"€".repeat(81)), 2);
        assert_eq!(segments(&"快".repeat(70)), 1);
        assert_eq!(segments(&"快".repeat(71)), 2);
        assert_eq!(segments(&"快".repeat(134)), 2);
        assert_eq!(segments(&"快".repeat(135)), 3);
    }
}
