//! SDP serializer: writes a [`SessionDescription`] in canonical form.
//!
//! This module owns the output side of SDP. It always writes `v=0` first and
//! ends every line with CRLF, as RFC 4566 requires; fields are separated by a
//! single space. Parsing its output gives back an equal value.

use std::fmt::{self, Write};

use super::{Media, SdpLine, SessionDescription};

pub(super) fn write_session(sdp: &SessionDescription, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str("v=0\r\n")?;
    for line in &sdp.lines {
        write_line(line, f)?;
    }
    for m in &sdp.media {
        write_media(&m.media, f)?;
        for line in &m.lines {
            write_line(line, f)?;
        }
    }
    Ok(())
}

fn write_media(m: &Media, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "m={} {}", m.media, m.port)?;
    if let Some(n) = m.num_ports {
        write!(f, "/{n}")?;
    }
    write!(f, " {}", m.proto)?;
    for fmt in &m.formats {
        f.write_char(' ')?;
        f.write_str(fmt)?;
    }
    f.write_str("\r\n")
}

fn write_line(line: &SdpLine, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_char(line.kind())?;
    f.write_char('=')?;
    match line {
        SdpLine::Origin(o) => write!(
            f,
            "{} {} {} {} {} {}",
            o.username, o.session_id, o.session_version, o.net_type, o.addr_type, o.address
        )?,
        SdpLine::Connection(c) => write!(f, "{} {} {}", c.net_type, c.addr_type, c.address)?,
        SdpLine::Bandwidth(b) => write!(f, "{}:{}", b.bwtype, b.bandwidth)?,
        SdpLine::Timing(t) => write!(f, "{} {}", t.start, t.stop)?,
        SdpLine::Attribute(a) => {
            f.write_str(&a.name)?;
            if let Some(v) = &a.value {
                f.write_char(':')?;
                f.write_str(v)?;
            }
        }
        SdpLine::SessionName(s)
        | SdpLine::Information(s)
        | SdpLine::Uri(s)
        | SdpLine::Email(s)
        | SdpLine::Phone(s)
        | SdpLine::Repeat(s)
        | SdpLine::TimeZones(s)
        | SdpLine::Key(s)
        | SdpLine::Other { value: s, .. } => f.write_str(s)?,
    }
    f.write_str("\r\n")
}
