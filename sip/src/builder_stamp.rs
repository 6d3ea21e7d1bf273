//! Stamping the top Via of a response with the request's real source
//! (RFC 3261 §18.2.1 `received`, RFC 3581 `rport`): what a server transport
//! owes a client behind NAT, kept apart from the general builder.
#![deny(clippy::indexing_slicing)]

use super::{header_lines, BuildError, MessageBuilder};
use crate::header::HeaderName;
use crate::scan::split_byte;

impl MessageBuilder {
    /// Stamps the top Via of a response built with
    /// [`response_to`](Self::response_to) with where the request really came
    /// from: `received=<ip>` when the sent-by host is a name or another
    /// address (RFC 3261 §18.2.1) or when the client asked for `rport`, and
    /// `rport=<port>` filling in a bare `;rport` (RFC 3581). Call it once,
    /// before adding other headers; other Via values are left untouched.
    ///
    /// ```
    /// use maskline_sip::{Message, MessageBuilder};
    ///
    /// let req = Message::parse(b"OPTIONS sip:b@h SIP/2.0\r\n\
    ///   Via: SIP/2.0/UDP 10.0.0.7:5060;branch=z9hG4bK1;rport, SIP/2.0/UDP p;branch=z9hG4bK0\r\n\
    ///   From: <sip:a@h>;tag=9\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n").unwrap();
    /// let out = MessageBuilder::response_to(&req, 200, "OK", Some("t")).unwrap()
    ///     .stamp_received("198.51.100.9:40123".parse().unwrap())
    ///     .build().unwrap();
    /// let resp = Message::parse(&out).unwrap();
    /// let via = resp.top_via().unwrap();
    /// assert_eq!(via.received(), Some("198.51.100.9"));
    /// assert_eq!(via.rport(), Some(Some(40123)));
    /// assert_eq!(resp.vias().count(), 2);
    /// ```
    #[must_use]
    pub fn stamp_received(mut self, source: std::net::SocketAddr) -> Self {
        let lines = header_lines(&self.head);
        let Some(&(a, b, _)) = lines.iter().find(|l| l.2 == HeaderName::Via) else {
            return self;
        };
        let Some(line) = self
            .head
            .get(a..b)
            .and_then(|l| std::str::from_utf8(l).ok())
        else {
            return self;
        };
        let value = crate::scan::trim(split_byte(line, b':').map_or("", |(_, v)| v));
        let Ok(Some(first_end)) =
            crate::scan::find_unquoted(value, b',').map(|c| c.or(Some(value.len())))
        else {
            self.error = Some(BuildError::InvalidHeaderValue("Via".into()));
            return self;
        };
        let first = value.get(..first_end).unwrap_or("");
        let rest = value.get(first_end..).unwrap_or("");
        let Ok(via) = crate::via::Via::parse(first) else {
            self.error = Some(BuildError::InvalidHeaderValue("Via".into()));
            return self;
        };
        let ip = source.ip();
        let host_matches = match via.host() {
            crate::uri::Host::Ipv4(v4) => std::net::IpAddr::V4(v4) == ip,
            crate::uri::Host::Ipv6(v6) => v6
                .parse::<std::net::Ipv6Addr>()
                .is_ok_and(|v6| std::net::IpAddr::V6(v6) == ip),
            crate::uri::Host::Domain(_) => false,
        };
        let wants_rport = via.rport().is_some();
        let mut v = String::with_capacity(first.len() + 48);
        v.push_str(via.protocol());
        v.push('/');
        v.push_str(via.version());
        v.push('/');
        v.push_str(via.transport());
        v.push(' ');
        v.push_str(via.host_str());
        if let Some(p) = via.port() {
            v.push(':');
            v.push_str(&p.to_string());
        }
        for p in via.params().iter() {
            if p.name.eq_ignore_ascii_case("received")
                || (wants_rport && p.name.eq_ignore_ascii_case("rport"))
            {
                continue;
            }
            v.push(';');
            v.push_str(p.name);
            if let Some(val) = p.value {
                v.push('=');
                v.push_str(val);
            }
        }
        if !host_matches || wants_rport {
            v.push_str(";received=");
            v.push_str(&ip.to_string());
        }
        if wants_rport {
            v.push_str(";rport=");
            v.push_str(&source.port().to_string());
        }
        v.push_str(rest);
        let mut head = Vec::with_capacity(self.head.len() + 48);
        head.extend_from_slice(self.head.get(..a).unwrap_or(&[]));
        head.extend_from_slice(b"Via: ");
        head.extend_from_slice(v.as_bytes());
        head.extend_from_slice(b"\r\n");
        head.extend_from_slice(self.head.get(b..).unwrap_or(&[]));
        self.head = head;
        self
    }
}
