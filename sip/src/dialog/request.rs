//! Building requests inside a dialog (RFC 3261 §12.2.1.1, §13.2.2.4).
//!
//! This module owns the Request-URI / Route computation (loose routing when
//! the first route has `lr`, strict routing otherwise), the local CSeq
//! increment, and the ACK for a 2xx, which reuses the INVITE's CSeq number
//! and is sent end-to-end with a fresh branch.

use super::{Dialog, DialogError, DialogState};
use crate::{new_branch, HeaderName, MessageBuilder, Method, NameAddr};

/// Largest CSeq number allowed (RFC 3261 §8.1.1.5: below 2^31).
const MAX_CSEQ: u32 = (1 << 31) - 1;

impl Dialog {
    /// Start a new in-dialog request (BYE, re-INVITE, UPDATE, INFO, ...)
    /// with the next local CSeq, Request-URI and Route headers from the
    /// remote target and route set, From/To with both tags, the Call-ID,
    /// `Max-Forwards: 70` and a Via with a fresh branch. The caller adds
    /// Contact (for target refreshes), a body, and anything else.
    ///
    /// A UAS dialog that never sent a request starts its CSeq at 1.
    ///
    /// ```
    /// use maskline_sip::{dialog::Dialog, Message, Method};
    /// let invite = Message::parse(b"INVITE sip:relay@relay.example SIP/2.0\r\n\
    ///     Via: SIP/2.0/UDP gw.example;branch=z9hG4bK9\r\nFrom: <sip:+15550199@gw.example>;tag=R\r\n\
    ///     To: <sip:+15550100@relay.example>\r\nCall-ID: in-1\r\nCSeq: 100 INVITE\r\n\
    ///     Contact: <sip:gw@198.51.100.3>\r\n\r\n").unwrap();
    /// let mut leg = Dialog::uas(&invite, "L").unwrap();
    /// let bye = leg.new_request(Method::Bye, "UDP", "relay.example").unwrap().build().unwrap();
    /// let bye = Message::parse(&bye).unwrap();
    /// assert_eq!(bye.request_line().unwrap().uri, "sip:gw@198.51.100.3");
    /// assert_eq!(bye.from().unwrap().tag(), Some("L"));
    /// assert_eq!(bye.to().unwrap().tag(), Some("R"));
    /// assert_eq!(bye.cseq().unwrap().seq, 1);
    /// ```
    pub fn new_request(
        &mut self,
        method: Method<'_>,
        transport: &str,
        sent_by: &str,
    ) -> Result<MessageBuilder, DialogError> {
        match method {
            Method::Ack => return Err(DialogError::WrongMethod("ACK")),
            Method::Cancel => return Err(DialogError::WrongMethod("CANCEL")),
            _ => {}
        }
        if self.state == DialogState::Terminated {
            return Err(DialogError::Terminated);
        }
        let seq = match self.local_seq {
            None => 1,
            Some(s) if s < MAX_CSEQ => s + 1,
            Some(_) => return Err(DialogError::CSeqExhausted),
        };
        let builder = self.build(method, seq, transport, sent_by)?;
        self.local_seq = Some(seq);
        if method == Method::Invite {
            self.invite_seq = Some(seq);
        }
        Ok(builder)
    }

    /// Start the ACK for a 2xx to the last INVITE this endpoint sent in the
    /// dialog (the initial one for a UAC dialog, or a re-INVITE): same CSeq
    /// number with method ACK, a fresh branch, Request-URI and Route from
    /// the dialog. Build it again to re-send it for a retransmitted 2xx.
    pub fn ack(&self, transport: &str, sent_by: &str) -> Result<MessageBuilder, DialogError> {
        let seq = self.invite_seq.ok_or(DialogError::NoInvite)?;
        self.build(Method::Ack, seq, transport, sent_by)
    }

    /// The Request-URI and Route values for the next request.
    fn target_and_routes(&self) -> Result<(String, Vec<String>), DialogError> {
        let Some(first) = self.route_set.first() else {
            return Ok((self.remote_target.clone(), Vec::new()));
        };
        let first_addr = NameAddr::parse(first)?;
        if first_addr.uri().params().has("lr") {
            return Ok((self.remote_target.clone(), self.route_set.clone()));
        }
        // Strict routing: the first route becomes the Request-URI and the
        // remote target goes last in Route.
        let mut routes: Vec<String> = self.route_set.iter().skip(1).cloned().collect();
        routes.push(format!("<{}>", self.remote_target));
        Ok((first_addr.uri().as_str().to_owned(), routes))
    }

    fn build(
        &self,
        method: Method<'_>,
        seq: u32,
        transport: &str,
        sent_by: &str,
    ) -> Result<MessageBuilder, DialogError> {
        let (uri, routes) = self.target_and_routes()?;
        let mut b = MessageBuilder::request(method, &uri)
            .via(transport, sent_by, &new_branch())
            .max_forwards(70);
        for r in &routes {
            b = b.header_kind(HeaderName::Route, r);
        }
        Ok(b.header_kind(HeaderName::From, &self.local_party)
            .header_kind(HeaderName::To, &self.remote_party)
            .header_kind(HeaderName::CallId, &self.id.call_id)
            .cseq(seq, method))
    }
}
