//! SIP dialogs (RFC 3261 §12): the state a B2BUA keeps for each call leg.
//!
//! This module owns [`Dialog`] and [`DialogId`]: creating a dialog from a
//! dialog-creating response (UAC side) or request (UAS side), keeping the
//! local and remote CSeq, the remote target (Contact) and the route set
//! (Record-Route, reversed on the UAC side), validating in-dialog requests,
//! and building in-dialog requests (BYE, re-INVITE, UPDATE, ...) and the ACK
//! for a 2xx with the right Request-URI, Route headers and CSeq. A privacy
//! B2BUA holds two independent dialogs per call, one per leg, and never
//! copies one leg's dialog state into the other.
//!
//! ```
//! use maskline_sip::{dialog::{Dialog, DialogState}, Message, Method};
//!
//! let invite = Message::parse(b"INVITE sip:+15550100@carrier.example SIP/2.0\r\n\
//!     Via: SIP/2.0/UDP relay.example;branch=z9hG4bK1\r\nFrom: <sip:relay@relay.example>;tag=L\r\n\
//!     To: <sip:+15550100@carrier.example>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n\r\n").unwrap();
//! let ok = Message::parse(b"SIP/2.0 200 OK\r\n\
//!     Via: SIP/2.0/UDP relay.example;branch=z9hG4bK1\r\nFrom: <sip:relay@relay.example>;tag=L\r\n\
//!     To: <sip:+15550100@carrier.example>;tag=R\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n\
//!     Record-Route: <sip:sbc2.example;lr>, <sip:sbc1.example;lr>\r\n\
//!     Contact: <sip:gw@192.0.2.9:5060>\r\n\r\n").unwrap();
//! let mut leg = Dialog::uac(&invite, &ok).unwrap();
//! assert_eq!(leg.state(), DialogState::Confirmed);
//! let ack = leg.ack("UDP", "relay.example").unwrap().build().unwrap();
//! let ack = Message::parse(&ack).unwrap();
//! assert_eq!(ack.request_line().unwrap().uri, "sip:gw@192.0.2.9:5060");
//! assert_eq!(ack.cseq().unwrap().seq, 1);
//! let bye = leg.new_request(Method::Bye, "UDP", "relay.example").unwrap().build().unwrap();
//! let bye = Message::parse(&bye).unwrap();
//! assert_eq!(bye.cseq().unwrap().seq, 2);
//! let routes: Vec<_> = bye.routes().map(|r| r.unwrap().as_str()).collect();
//! assert_eq!(routes, ["<sip:sbc1.example;lr>", "<sip:sbc2.example;lr>"]);
//! ```

mod request;

use crate::{BuildError, Contact, Message, Method, ParseError};

/// Errors from dialog creation, validation and request building.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialogError {
    /// A header the dialog needs is missing or malformed.
    #[error("message unusable for the dialog: {0}")]
    Message(#[from] ParseError),
    /// The request builder refused a value.
    #[error("cannot build in-dialog request: {0}")]
    Build(#[from] BuildError),
    /// A required tag is missing (`From` or `To`).
    #[error("the {0} header has no tag")]
    MissingTag(&'static str),
    /// The message has no usable Contact (it is missing or `*`).
    #[error("no usable Contact for the remote target")]
    MissingContact,
    /// The response cannot create a dialog (100, or not 1xx/2xx).
    #[error("a {0} response does not create a dialog")]
    NotDialogCreating(u16),
    /// The request to answer already has a To tag (it is in-dialog).
    #[error("the request already has a To tag")]
    AlreadyTagged,
    /// The message does not belong to this dialog.
    #[error("the message does not belong to this dialog")]
    Mismatch,
    /// An in-dialog request whose CSeq is not above the last one (RFC 3261
    /// §12.2.2: answer 500).
    #[error("CSeq {cseq} is not above the last remote CSeq {last}")]
    OutOfOrder {
        /// The CSeq received.
        cseq: u32,
        /// The last remote CSeq.
        last: u32,
    },
    /// The local CSeq would pass 2^31 - 1.
    #[error("local CSeq exhausted")]
    CSeqExhausted,
    /// No INVITE was sent in this dialog, so there is nothing to ACK.
    #[error("no INVITE to acknowledge")]
    NoInvite,
    /// ACK and CANCEL are not built with `new_request`.
    #[error("{0} is not built as a new in-dialog request")]
    WrongMethod(&'static str),
    /// The dialog has ended.
    #[error("the dialog is terminated")]
    Terminated,
}

/// Identifies a dialog from this endpoint's point of view (RFC 3261 §12).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    /// Call-ID.
    pub call_id: String,
    /// This endpoint's tag.
    pub local_tag: String,
    /// The peer's tag.
    pub remote_tag: String,
}

impl DialogId {
    /// The id of the dialog an incoming request belongs to: local tag from
    /// To, remote tag from From. Fails with [`DialogError::MissingTag`] if
    /// the To has no tag (the request is not in a dialog).
    ///
    /// ```
    /// use maskline_sip::{dialog::DialogId, Message};
    /// let bye = Message::parse(b"BYE sip:relay@relay.example SIP/2.0\r\nVia: SIP/2.0/UDP gw;branch=z9hG4bK2\r\n\
    ///     From: <sip:b@gw>;tag=R\r\nTo: <sip:relay@relay.example>;tag=L\r\nCall-ID: c1\r\nCSeq: 9 BYE\r\n\r\n").unwrap();
    /// let id = DialogId::for_incoming_request(&bye).unwrap();
    /// assert_eq!((id.local_tag.as_str(), id.remote_tag.as_str()), ("L", "R"));
    /// ```
    pub fn for_incoming_request(msg: &Message<'_>) -> Result<Self, DialogError> {
        Ok(DialogId {
            call_id: msg.call_id()?.to_owned(),
            local_tag: msg
                .to()?
                .tag()
                .ok_or(DialogError::MissingTag("To"))?
                .to_owned(),
            remote_tag: msg
                .from()?
                .tag()
                .ok_or(DialogError::MissingTag("From"))?
                .to_owned(),
        })
    }

    /// The id of the dialog an incoming response belongs to: local tag from
    /// From, remote tag from To.
    pub fn for_incoming_response(msg: &Message<'_>) -> Result<Self, DialogError> {
        Ok(DialogId {
            call_id: msg.call_id()?.to_owned(),
            local_tag: msg
                .from()?
                .tag()
                .ok_or(DialogError::MissingTag("From"))?
                .to_owned(),
            remote_tag: msg
                .to()?
                .tag()
                .ok_or(DialogError::MissingTag("To"))?
                .to_owned(),
        })
    }
}

/// Dialog state (RFC 3261 §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DialogState {
    /// Created by a provisional response; not yet answered with a 2xx.
    Early,
    /// A 2xx was sent or received.
    Confirmed,
    /// Ended (BYE, a non-2xx final to the creating INVITE, 481/408).
    Terminated,
}

/// Which side of the dialog-creating transaction this endpoint was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Sent the creating request.
    Uac,
    /// Received the creating request.
    Uas,
}

/// One dialog: everything needed to send and check in-dialog requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    id: DialogId,
    role: Role,
    state: DialogState,
    /// Our From value in requests we send (with our tag).
    local_party: String,
    /// The peer's To value in requests we send (with its tag).
    remote_party: String,
    local_seq: Option<u32>,
    remote_seq: Option<u32>,
    remote_target: String,
    route_set: Vec<String>,
    secure: bool,
    invite_seq: Option<u32>,
}

/// Methods whose requests and 2xx responses refresh the remote target.
fn is_target_refresh(method: Method<'_>) -> bool {
    matches!(
        method,
        Method::Invite | Method::Update | Method::Subscribe | Method::Notify | Method::Refer
    )
}

/// Whether a Request-URI uses the `sips:` scheme.
fn is_sips(uri: &str) -> bool {
    uri.get(..5)
        .is_some_and(|s| s.eq_ignore_ascii_case("sips:"))
}

/// The URI of the first Contact, if it is an address.
fn contact_target(msg: &Message<'_>) -> Result<Option<String>, DialogError> {
    match msg.contacts().next() {
        None => Ok(None),
        Some(c) => match c? {
            Contact::Addr(a) => Ok(Some(a.uri().as_str().to_owned())),
            Contact::Star => Err(DialogError::MissingContact),
        },
    }
}

fn record_routes(msg: &Message<'_>) -> Result<Vec<String>, DialogError> {
    Ok(msg
        .record_routes()
        .map(|r| r.map(|a| a.as_str().to_owned()))
        .collect::<Result<_, _>>()?)
}

impl Dialog {
    /// The UAC side: a dialog created by `response` (1xx with a To tag →
    /// early, 2xx → confirmed) to `request`, which this endpoint sent.
    /// The route set is the response's Record-Route in reverse order; the
    /// remote target is its Contact (a 1xx without Contact falls back to
    /// the Request-URI).
    pub fn uac(request: &Message<'_>, response: &Message<'_>) -> Result<Self, DialogError> {
        let status = response.status().ok_or(ParseError::InvalidStartLine)?;
        if !(101..=299).contains(&status) {
            return Err(DialogError::NotDialogCreating(status));
        }
        let line = request.request_line().ok_or(ParseError::InvalidStartLine)?;
        let id = DialogId::for_incoming_response(response)?;
        if id.call_id != request.call_id()? {
            return Err(DialogError::Mismatch);
        }
        let remote_target = match contact_target(response)? {
            Some(t) => t,
            None if status < 200 => line.uri.to_owned(),
            None => return Err(DialogError::MissingContact),
        };
        let mut route_set = record_routes(response)?;
        route_set.reverse();
        let cseq = request.cseq()?;
        Ok(Dialog {
            id,
            role: Role::Uac,
            state: if status < 200 {
                DialogState::Early
            } else {
                DialogState::Confirmed
            },
            local_party: request.from()?.as_str().to_owned(),
            remote_party: response.to()?.as_str().to_owned(),
            local_seq: Some(cseq.seq),
            remote_seq: None,
            remote_target,
            route_set,
            secure: is_sips(line.uri),
            invite_seq: (cseq.method == Method::Invite).then_some(cseq.seq),
        })
    }

    /// The UAS side: a dialog for `request` (received), answered with
    /// `local_tag` in the To of our responses. Starts Early; call
    /// [`confirm`](Self::confirm) once a 2xx is sent. The route set is the
    /// request's Record-Route in order; the remote target its Contact.
    pub fn uas(request: &Message<'_>, local_tag: &str) -> Result<Self, DialogError> {
        let line = request.request_line().ok_or(ParseError::InvalidStartLine)?;
        let to = request.to()?;
        if to.tag().is_some() {
            return Err(DialogError::AlreadyTagged);
        }
        let from = request.from()?;
        let remote_tag = from.tag().ok_or(DialogError::MissingTag("From"))?;
        let remote_target = contact_target(request)?.ok_or(DialogError::MissingContact)?;
        Ok(Dialog {
            id: DialogId {
                call_id: request.call_id()?.to_owned(),
                local_tag: local_tag.to_owned(),
                remote_tag: remote_tag.to_owned(),
            },
            role: Role::Uas,
            state: DialogState::Early,
            local_party: format!("{};tag={local_tag}", to.as_str()),
            remote_party: from.as_str().to_owned(),
            local_seq: None,
            remote_seq: Some(request.cseq()?.seq),
            remote_target,
            route_set: record_routes(request)?,
            secure: is_sips(line.uri),
            invite_seq: None,
        })
    }

    /// The dialog id.
    pub fn id(&self) -> &DialogId {
        &self.id
    }

    /// Which side created the dialog.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Current state.
    pub fn state(&self) -> DialogState {
        self.state
    }

    /// The last CSeq this endpoint used, if any.
    pub fn local_seq(&self) -> Option<u32> {
        self.local_seq
    }

    /// The last CSeq received from the peer, if any.
    pub fn remote_seq(&self) -> Option<u32> {
        self.remote_seq
    }

    /// The remote target URI (where in-dialog requests go).
    pub fn remote_target(&self) -> &str {
        &self.remote_target
    }

    /// The route set, in the order Route headers are written.
    pub fn route_set(&self) -> &[String] {
        &self.route_set
    }

    /// Whether the dialog was created over `sips:`.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// Our From value (with our tag) in requests this endpoint sends.
    pub fn local_party(&self) -> &str {
        &self.local_party
    }

    /// The peer's value (with its tag) written in To.
    pub fn remote_party(&self) -> &str {
        &self.remote_party
    }

    /// Mark the dialog confirmed (UAS: a 2xx was sent).
    pub fn confirm(&mut self) {
        if self.state == DialogState::Early {
            self.state = DialogState::Confirmed;
        }
    }

    /// Mark the dialog terminated.
    pub fn terminate(&mut self) {
        self.state = DialogState::Terminated;
    }

    /// Check and record an incoming in-dialog request (RFC 3261 §12.2.2):
    /// it must carry this dialog's tags, and its CSeq must exceed the last
    /// one (ACK and CANCEL reuse their INVITE's CSeq and are not checked).
    /// Target-refresh requests with a Contact update the remote target; a
    /// BYE terminates the dialog.
    pub fn handle_request(&mut self, request: &Message<'_>) -> Result<(), DialogError> {
        if DialogId::for_incoming_request(request)? != self.id {
            return Err(DialogError::Mismatch);
        }
        let method = request.method().ok_or(ParseError::InvalidStartLine)?;
        if matches!(method, Method::Ack | Method::Cancel) {
            return Ok(());
        }
        let cseq = request.cseq()?.seq;
        if let Some(last) = self.remote_seq {
            if cseq <= last {
                return Err(DialogError::OutOfOrder { cseq, last });
            }
        }
        self.remote_seq = Some(cseq);
        if is_target_refresh(method) {
            if let Some(target) = contact_target(request)? {
                self.remote_target = target;
            }
        }
        if method == Method::Bye {
            self.state = DialogState::Terminated;
        }
        Ok(())
    }

    /// Record a response to a request this endpoint sent in the dialog
    /// (UAC behaviour, RFC 3261 §12.1.2, §12.2.1.2):
    /// * a 2xx to the INVITE confirms an early dialog and recomputes the
    ///   route set from its Record-Route;
    /// * 1xx/2xx to a target-refresh request with a Contact update the
    ///   remote target;
    /// * a non-2xx final to the INVITE of an early dialog, a 481 or 408
    ///   to any request, and any final response to BYE terminate it.
    pub fn handle_response(&mut self, response: &Message<'_>) -> Result<(), DialogError> {
        if DialogId::for_incoming_response(response)? != self.id {
            return Err(DialogError::Mismatch);
        }
        let status = response.status().ok_or(ParseError::InvalidStartLine)?;
        let method = response.cseq()?.method;
        if status == 100 {
            return Ok(());
        }
        if status < 300 && is_target_refresh(method) {
            if let Some(target) = contact_target(response)? {
                self.remote_target = target;
            }
        }
        let early = self.state == DialogState::Early;
        match status {
            200..=299 if early && method == Method::Invite => {
                self.state = DialogState::Confirmed;
                if self.role == Role::Uac {
                    let mut routes = record_routes(response)?;
                    routes.reverse();
                    self.route_set = routes;
                }
            }
            300..=699 if early && method == Method::Invite => self.terminate(),
            408 | 481 => self.terminate(),
            200..=699 if method == Method::Bye => self.terminate(),
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
