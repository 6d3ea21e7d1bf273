//! Editing helpers a masking media relay needs on SDP.
//!
//! This module owns the privacy rewrites: the connection addresses (`c=`),
//! the media ports (`m=`) and the origin (`o=`), which names the caller's
//! host and often its user. Rewrites apply to *every* matching line,
//! including duplicates a hostile peer may add, so no copy of the original
//! address survives in a line type the relay rewrites. Values given as text
//! are checked so that they cannot break the line syntax.

use std::net::IpAddr;

use super::{Connection, MediaDescription, Origin, SdpError, SdpLine, SessionDescription};

/// Reject values that would change the line structure.
fn check_token(value: &str, field: &'static str) -> Result<(), SdpError> {
    if value.is_empty() || value.contains([' ', '\t', '\r', '\n', '\0']) {
        return Err(SdpError::InvalidValue { field });
    }
    Ok(())
}

fn addr_type(addr: IpAddr) -> &'static str {
    match addr {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    }
}

impl Connection {
    /// An `IN IP4`/`IN IP6` connection for a unicast address.
    ///
    /// ```
    /// use maskline_sip::sdp::Connection;
    /// let c = Connection::for_ip("2001:db8::1".parse().unwrap());
    /// assert_eq!((c.addr_type.as_str(), c.address.as_str()), ("IP6", "2001:db8::1"));
    /// ```
    pub fn for_ip(addr: IpAddr) -> Self {
        Connection {
            net_type: "IN".to_owned(),
            addr_type: addr_type(addr).to_owned(),
            address: addr.to_string(),
        }
    }
}

impl Connection {
    /// Whether the address is unspecified (`0.0.0.0` or `::`): the
    /// RFC 2543 way of putting a stream on hold. A relay that rewrites
    /// addresses may want to keep such a line as it is.
    ///
    /// ```
    /// use maskline_sip::sdp::Connection;
    /// assert!(Connection::for_ip("0.0.0.0".parse().unwrap()).is_unspecified());
    /// assert!(!Connection::for_ip("192.0.2.1".parse().unwrap()).is_unspecified());
    /// ```
    pub fn is_unspecified(&self) -> bool {
        self.address
            .parse::<IpAddr>()
            .is_ok_and(|a| a.is_unspecified())
    }
}

impl Origin {
    /// Increment the session version, as RFC 3264 §8 requires whenever a
    /// modified offer is sent. Fails if the version is not a decimal number
    /// below `u64::MAX`.
    ///
    /// ```
    /// use maskline_sip::sdp::SessionDescription;
    /// let mut sdp = SessionDescription::parse(b"v=0\r\no=- 5 41 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\n").unwrap();
    /// sdp.origin_mut().unwrap().increment_version().unwrap();
    /// assert_eq!(sdp.origin().unwrap().session_version, "42");
    /// ```
    pub fn increment_version(&mut self) -> Result<(), SdpError> {
        let next = self
            .session_version
            .parse::<u64>()
            .ok()
            .and_then(|v| v.checked_add(1))
            .ok_or(SdpError::InvalidValue {
                field: "session version",
            })?;
        self.session_version = next.to_string();
        Ok(())
    }
}

impl SessionDescription {
    /// Point every `c=` line (session level and every media section) at
    /// `addr`, setting the address type to match. Returns how many lines were
    /// rewritten. Multicast `/ttl` suffixes are dropped: the relay is unicast.
    ///
    /// ```
    /// use maskline_sip::sdp::SessionDescription;
    /// let mut sdp = SessionDescription::parse(b"v=0\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
    ///     m=audio 1 RTP/AVP 0\r\nc=IN IP4 10.0.0.2\r\n").unwrap();
    /// assert_eq!(sdp.set_connection_address("2001:db8::7".parse().unwrap()), 2);
    /// assert_eq!(sdp.media[0].connection().unwrap().addr_type, "IP6");
    /// ```
    pub fn set_connection_address(&mut self, addr: IpAddr) -> usize {
        let lines = self
            .lines
            .iter_mut()
            .chain(self.media.iter_mut().flat_map(|m| m.lines.iter_mut()));
        let mut n = 0;
        for line in lines {
            if let SdpLine::Connection(c) = line {
                *c = Connection::for_ip(addr);
                n += 1;
            }
        }
        n
    }

    /// Replace the user name and address of every `o=` line (privacy: the
    /// origin often names the caller's user and host). The session id and
    /// version are kept; see [`Origin::increment_version`]. Returns how many
    /// lines were rewritten.
    ///
    /// ```
    /// use maskline_sip::sdp::SessionDescription;
    /// let mut sdp = SessionDescription::parse(
    ///     b"v=0\r\no=+15551234567 9 9 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\n").unwrap();
    /// sdp.set_origin("-", "203.0.113.9".parse().unwrap()).unwrap();
    /// assert!(sdp.to_string().contains("o=- 9 9 IN IP4 203.0.113.9\r\n"));
    /// ```
    pub fn set_origin(&mut self, username: &str, addr: IpAddr) -> Result<usize, SdpError> {
        check_token(username, "origin username")?;
        let lines = self
            .lines
            .iter_mut()
            .chain(self.media.iter_mut().flat_map(|m| m.lines.iter_mut()));
        let mut n = 0;
        for line in lines {
            if let SdpLine::Origin(o) = line {
                o.username = username.to_owned();
                o.net_type = "IN".to_owned();
                o.addr_type = addr_type(addr).to_owned();
                o.address = addr.to_string();
                n += 1;
            }
        }
        Ok(n)
    }
}

impl MediaDescription {
    /// Set the media port on the `m=` line.
    ///
    /// ```
    /// use maskline_sip::sdp::SessionDescription;
    /// let mut sdp = SessionDescription::parse(b"v=0\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\n").unwrap();
    /// sdp.media[0].set_port(30000);
    /// assert_eq!(sdp.media[0].media.port, 30000);
    /// ```
    pub fn set_port(&mut self, port: u16) {
        self.media.port = port;
    }

    /// Keep only the formats for which `keep` returns true, and drop the
    /// `a=rtpmap`, `a=fmtp` and `a=rtcp-fb` lines of the removed payload
    /// types. Returns how many formats were removed. Useful to restrict an
    /// offer to the codecs the relay supports.
    ///
    /// ```
    /// use maskline_sip::sdp::SessionDescription;
    /// let mut sdp = SessionDescription::parse(b"v=0\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0 18 101\r\n\
    ///     a=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=no\r\na=rtpmap:101 telephone-event/8000\r\n").unwrap();
    /// assert_eq!(sdp.media[0].retain_formats(|f| f != "18"), 1);
    /// assert_eq!(sdp.to_string(),
    ///     "v=0\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n");
    /// ```
    pub fn retain_formats(&mut self, mut keep: impl FnMut(&str) -> bool) -> usize {
        let mut removed = Vec::new();
        self.media.formats.retain(|f| {
            let k = keep(f);
            if !k {
                removed.push(f.clone());
            }
            k
        });
        if !removed.is_empty() {
            self.lines.retain(|l| match l {
                SdpLine::Attribute(a)
                    if matches!(a.name.as_str(), "rtpmap" | "fmtp" | "rtcp-fb") =>
                {
                    let pt = a
                        .value
                        .as_deref()
                        .and_then(|v| v.split_ascii_whitespace().next());
                    !pt.is_some_and(|pt| removed.iter().any(|r| r == pt))
                }
                _ => true,
            });
        }
        removed.len()
    }

    /// Point this media section at `addr`: rewrite its `c=` lines, or, if it
    /// has none, insert one where RFC 4566 puts it (after `i=`).
    ///
    /// ```
    /// use maskline_sip::sdp::SessionDescription;
    /// let mut sdp = SessionDescription::parse(
    ///     b"v=0\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\ni=voice\r\na=sendrecv\r\n").unwrap();
    /// sdp.media[0].set_connection_address("198.51.100.2".parse().unwrap());
    /// assert!(sdp.to_string().ends_with("i=voice\r\nc=IN IP4 198.51.100.2\r\na=sendrecv\r\n"));
    /// ```
    pub fn set_connection_address(&mut self, addr: IpAddr) {
        let mut found = false;
        for line in &mut self.lines {
            if let SdpLine::Connection(c) = line {
                *c = Connection::for_ip(addr);
                found = true;
            }
        }
        if !found {
            let at = self
                .lines
                .iter()
                .position(|l| !matches!(l, SdpLine::Information(_)))
                .unwrap_or(self.lines.len());
            self.lines
                .insert(at, SdpLine::Connection(Connection::for_ip(addr)));
        }
    }
}
