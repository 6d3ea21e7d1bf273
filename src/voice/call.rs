//! The B2BUA: one [`Call`] per bridged call, two dialogs (A leg: the caller's,
//! B leg: ours towards the callee), the media session, and the handlers that move
//! a call through its life (routing → calling → early → answered → ended).
//!
//! **Topology hiding** is by construction: the B leg is a new dialog whose every
//! header is written here from an allow-list (Via, Max-Forwards, From/To/Contact/
//! P-Asserted-Identity naming only the virtual number X and our host, our own
//! Call-ID and tags, Allow, Content-Type); responses to the A leg are built from
//! A's own request plus our Contact and the media relay's SDP. Nothing from one
//! leg's headers (Call-ID, Via, Contact, Record-Route, tags, User-Agent/Server,
//! identity, diversion, history, X- headers) is ever copied to the other, and
//! every SDP body goes through the media relay, which writes our `o=`/`c=`/`m=`.

use std::sync::Arc;
use std::time::Instant;

use maskline_sip::dialog::Dialog;
use maskline_sip::transaction::{Destination, RequestInfo, TransactionId, Transport};
use maskline_sip::{HeaderName, Message, MessageBuilder, Method};

use super::engine::{reason_phrase, Engine, TimerKind, ALLOW};
use super::router::Decision;
use crate::bindings::{now_ms, UnixMs};
use crate::events::CallRecord;
use crate::media::{Advertise, Leg, MediaError, MediaSession};
use crate::numbers::E164;

/// Engine-local call handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u64);

/// What a transaction is to its call.
#[derive(Debug, Clone)]
pub enum TxRole {
    /// The caller's INVITE (server).
    AInvite,
    /// Our INVITE to the callee (client).
    BInvite,
    /// A CANCEL or BYE we sent (client); its responses need nothing.
    Ignore,
    /// An in-dialog request relayed from `from` to the other leg (client); its
    /// final response is relayed back on `server` (the original request, raw).
    Relay {
        /// Leg that sent the original request.
        from: Leg,
        /// The original request's server transaction.
        server: TransactionId,
        /// The original request.
        request: Arc<[u8]>,
    },
}

/// Where a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting for the route lookup.
    Routing,
    /// B-leg INVITE sent, no answer yet.
    Calling,
    /// Answered; both dialogs confirmed.
    Answered,
    /// The caller cancelled (or the no-answer timer fired); waiting for the
    /// callee's final response.
    Cancelling,
    /// The relay answered the caller itself (IVR, announcement); see `ivr.rs`.
    Ivr,
}

/// One bridged call.
#[derive(Debug)]
pub struct Call {
    pub(super) state: State,
    pub(super) trunk: usize,
    pub(super) received: Instant,
    pub(super) a_dest: Destination,
    pub(super) a_invite: Arc<[u8]>,
    pub(super) a_tx: TransactionId,
    pub(super) a_tag: String,
    pub(super) a_callid: String,
    pub(super) a_dialog: Option<Dialog>,
    pub(super) a_final_sent: bool,
    pub(super) b_invite: Option<Arc<[u8]>>,
    pub(super) b_callid: Option<String>,
    pub(super) b_dialog: Option<Dialog>,
    pub(super) b_ack: Option<Arc<[u8]>>,
    /// Late offer: the caller's INVITE had no SDP, the callee's 2xx carries the
    /// offer, and our ACK to the callee waits for the caller's ACK (the answer).
    pub(super) ack_awaits_answer: bool,
    pub(super) b_dest: Destination,
    pub(super) b_provisional: bool,
    pub(super) cancel_pending: bool,
    pub(super) media: Option<MediaSession>,
    pub(super) number: E164,
    pub(super) caller: E164,
    pub(super) record: CallRecord,
    /// Set while (and after) the relay answers the caller itself.
    pub(super) ivr: Option<Box<super::ivr::IvrCall>>,
}

impl Call {
    fn our_contact(&self, settings: &super::VoiceSettings, leg: Leg) -> String {
        let (transport, addr) = match leg {
            Leg::A => (self.a_dest.transport, settings.local(self.a_dest.transport)),
            Leg::B => (self.b_dest.transport, settings.local(self.b_dest.transport)),
        };
        let t = match transport {
            Transport::Tcp => ";transport=tcp",
            Transport::Tls => ";transport=tls",
            _ => "",
        };
        format!("<sip:{}@{}{}>", self.number.digits(), addr, t)
    }
}

pub(super) fn is_sdp(msg: &Message<'_>) -> bool {
    !msg.body().is_empty()
        && msg
            .content_type()
            .and_then(Result::ok)
            .is_some_and(|c| c.is("application", "sdp"))
}

pub(super) fn transport_name(t: Transport) -> &'static str {
    match t {
        Transport::Tcp => "TCP",
        Transport::Tls => "TLS",
        _ => "UDP",
    }
}

/// Stable key of (caller, X) for the per-caller rate limit (not stored anywhere).
fn pair_key(caller: &E164, number: &E164) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    caller.hash(&mut h);
    number.hash(&mut h);
    h.finish()
}

impl Engine {
    /// A new INVITE from a trusted trunk.
    pub(super) fn on_new_invite(
        &mut self,
        tx: TransactionId,
        msg: &Message<'_>,
        raw: &[u8],
        dest: Destination,
        trunk: usize,
        received: Instant,
    ) {
        if self.draining {
            self.respond(tx, msg, 503, None, &[("Retry-After", "5")]);
            return;
        }
        if !msg.body().is_empty() && !is_sdp(msg) {
            self.respond(tx, msg, 415, None, &[("Accept", "application/sdp")]);
            return;
        }
        let Some(t) = self.trunks.get(trunk) else {
            return;
        };
        let (caller, number) = match t.numbers(msg) {
            Ok(n) => n,
            Err(super::trunk::NumberProblem::Caller) => {
                self.count_outcome("bad_caller");
                self.respond(tx, msg, 403, None, &[]);
                return;
            }
            Err(super::trunk::NumberProblem::Called) => {
                self.count_outcome("unknown_number");
                self.respond(tx, msg, 404, None, &[]);
                return;
            }
        };
        if t.cps.check().is_err() {
            self.count_outcome("trunk_cps");
            self.respond(tx, msg, 503, None, &[("Retry-After", "1")]);
            return;
        }
        if self
            .caller_limit
            .check_key(&pair_key(&caller, &number))
            .is_err()
        {
            self.count_outcome("rate_limited");
            tracing::info!(caller = %caller, number = %number, "sip: caller over the per-number call rate: 486");
            self.respond(tx, msg, 486, None, &[]);
            return;
        }
        let (t_transport, t_gateway, t_name) = (t.transport, t.gateway, t.name.clone());
        self.respond(tx, msg, 100, None, &[]);
        let Ok(a_callid) = msg.call_id().map(str::to_owned) else {
            return;
        };
        let id = self.new_call_id();
        let b_dest = Destination {
            transport: t_transport,
            addr: t_gateway,
        };
        let record = CallRecord {
            id: uuid::Uuid::now_v7().to_string(),
            binding_id: None,
            shipment_id: None,
            pool: None,
            number: number.expose().to_owned(),
            direction: None,
            caller: caller.masked(),
            callee: None,
            trunk: t_name,
            invite_at: now_ms(),
            ringing_at: None,
            answer_at: None,
            end_at: 0,
            duration_ms: 0,
            end_reason: String::new(),
            sip_status: 0,
            hangup_by: None,
            via: None,
            ivr: None,
        };
        let call = Call {
            state: State::Routing,
            trunk,
            received,
            a_dest: dest,
            a_invite: Arc::from(raw),
            a_tx: tx,
            a_tag: maskline_sip::new_tag(),
            a_callid: a_callid.clone(),
            a_dialog: None,
            a_final_sent: false,
            b_invite: None,
            b_callid: None,
            b_dialog: None,
            b_ack: None,
            ack_awaits_answer: false,
            b_dest,
            b_provisional: false,
            cancel_pending: false,
            media: None,
            number: number.clone(),
            caller: caller.clone(),
            record,
            ivr: None,
        };
        self.calls.insert(id, call);
        self.by_tx.insert(tx, (id, TxRole::AInvite));
        self.by_callid.insert(a_callid, id);
        self.lookup(id, number, caller);
    }

    fn count_outcome(&self, outcome: &'static str) {
        metrics::counter!("maskline_calls_total", "outcome" => outcome).increment(1);
    }

    /// Sends a final response to the caller's INVITE (non-2xx) and ends the call.
    pub(super) fn reject(&mut self, id: CallId, status: u16, reason: &str, extra: &[(&str, &str)]) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if !call.a_final_sent {
            call.a_final_sent = true;
            let (tx, raw, tag) = (call.a_tx, call.a_invite.clone(), call.a_tag.clone());
            if let Ok(inv) = Message::parse(&raw) {
                self.respond(tx, &inv, status, Some(&tag), extra);
            }
        }
        self.end_call(id, reason, status, None);
    }

    /// The route lookup came back.
    pub(super) fn on_decided(&mut self, id: CallId, decision: Decision) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if call.state != State::Routing {
            return;
        }
        let (callee, via) = match decision {
            Decision::Bridge { route } => {
                if let Some(c) = self.calls.get_mut(&id) {
                    c.record.binding_id = Some(route.binding_id.to_string());
                    c.record.pool = Some(route.pool.clone());
                }
                (route.callee, None)
            }
            Decision::DefaultParty { pool, party } => {
                if let Some(c) = self.calls.get_mut(&id) {
                    c.record.pool = Some(pool);
                }
                (party, Some("default_party"))
            }
            Decision::Ivr {
                pool,
                extension_len,
            } => {
                self.start_ivr(id, pool, Some(extension_len));
                return;
            }
            Decision::Announce { pool } => {
                self.start_ivr(id, pool, None);
                return;
            }
            Decision::NoBinding { pool } => {
                if let Some(c) = self.calls.get_mut(&id) {
                    c.record.pool = Some(pool);
                }
                let status = self.settings.no_binding_status;
                let text = format!("SIP;cause={status};text=\"no live binding for this caller\"");
                self.reject(id, status, "no_binding", &[("Reason", &text)]);
                return;
            }
            Decision::UnknownNumber => {
                self.reject(id, 404, "unknown_number", &[]);
                return;
            }
            Decision::Unavailable => {
                self.reject(id, 503, "store_unavailable", &[("Retry-After", "5")]);
                return;
            }
        };
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let adv = {
            let t = self.trunks.get(call.trunk);
            let ip = t.and_then(|t| t.media_ip);
            Advertise { a: ip, b: ip }
        };
        let mut media = match self.media.allocate(adv) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "sip: no media ports: 503");
                self.reject(id, 503, "ports_exhausted", &[("Retry-After", "5")]);
                return;
            }
        };
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let a_invite = call.a_invite.clone();
        let Ok(inv) = Message::parse(&a_invite) else {
            return;
        };
        let offer = if is_sdp(&inv) {
            match media.offer(Leg::A, inv.body()) {
                Ok(sdp) => Some(sdp),
                Err(MediaError::BadSdp(e)) => {
                    tracing::info!(error = %e, "sip: caller's SDP unusable: 488");
                    self.reject(id, 488, "failed", &[]);
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "sip: media error: 503");
                    self.reject(id, 503, "failed", &[]);
                    return;
                }
            }
        } else {
            None
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.media = Some(media);
        call.record.via = via.map(str::to_owned);
        self.place_b_leg(id, callee, offer);
    }

    /// Keeps the callee for the record writer (direction and shipment lookup).
    pub(super) fn pending_callee(&mut self, _id: CallId, _callee: E164) {}

    /// A response to one of our client transactions.
    pub(super) fn on_call_response(&mut self, id: CallId, role: TxRole, msg: &Message<'_>) {
        match role {
            TxRole::BInvite => self.on_b_invite_response(id, msg),
            TxRole::Relay {
                from,
                server,
                request,
            } => self.on_relay_response(id, from, server, &request, msg),
            TxRole::AInvite | TxRole::Ignore => {}
        }
    }

    fn on_b_invite_response(&mut self, id: CallId, msg: &Message<'_>) {
        let Some(status) = msg.status() else { return };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        match status {
            100 => {}
            101..=199 => {
                call.b_provisional = true;
                if call.cancel_pending {
                    call.cancel_pending = false;
                    self.send_b_cancel(id);
                    return;
                }
                if call.state != State::Calling {
                    return;
                }
                if call.ivr.is_some() {
                    // The caller is answered (or hears prompts): nothing to relay.
                    if call.record.ringing_at.is_none() {
                        call.record.ringing_at = Some(now_ms());
                    }
                    return;
                }
                if call.record.ringing_at.is_none() {
                    call.record.ringing_at = Some(now_ms());
                }
                let body = if is_sdp(msg) {
                    call.media
                        .as_mut()
                        .and_then(|m| m.answer(Leg::B, msg.body()).ok())
                } else {
                    None
                };
                let status = if body.is_some() { 183 } else { 180 };
                self.answer_a(id, status, body.as_deref());
            }
            200..=299 => self.on_b_answer(id, msg),
            _ => {
                if matches!(call.state, State::Answered) {
                    return;
                }
                if call.ivr.is_some() {
                    self.on_ivr_b_failed(id, status);
                    return;
                }
                let cancelled = call.state == State::Cancelling;
                let (relay, reason) = match status {
                    300..=399 => (480, "failed"),
                    401 | 407 => (403, "failed"),
                    486 | 600 => (status, "busy"),
                    487 => (487, "cancelled"),
                    408 | 480 => (480, "no_answer"),
                    603 => (603, "declined"),
                    s => (s, "failed"),
                };
                if cancelled {
                    let reason = call.record.end_reason.clone();
                    let reason = if reason.is_empty() {
                        "cancelled".to_owned()
                    } else {
                        reason
                    };
                    let st = call.record.sip_status;
                    self.end_call(id, &reason, if st == 0 { 487 } else { st }, None);
                } else {
                    self.reject(id, relay, reason, &[]);
                }
            }
        }
    }

    fn on_b_answer(&mut self, id: CallId, msg: &Message<'_>) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let to_tag = msg.to().ok().and_then(|t| t.tag().map(str::to_owned));
        if let Some(d) = &call.b_dialog {
            // A retransmitted 2xx: ACK again. A 2xx from another fork: ACK and BYE it.
            if Some(d.id().remote_tag.as_str()) == to_tag.as_deref() {
                self.resend_b_ack(id);
            } else {
                self.ack_and_bye_fork(id, msg);
            }
            return;
        }
        let Some(b_invite) = call.b_invite.clone() else {
            return;
        };
        let Ok(inv) = Message::parse(&b_invite) else {
            return;
        };
        let mut dialog = match Dialog::uac(&inv, msg) {
            Ok(d) => d,
            Err(e) => {
                tracing::info!(error = %e, "sip: unusable 2xx from the callee");
                return;
            }
        };
        dialog.confirm();
        let late_offer = inv.body().is_empty() && is_sdp(msg);
        let ivr_phase = call.ivr.as_ref().map(|i| i.phase);
        let gone = call.state == State::Cancelling
            || (call.a_final_sent && ivr_phase.is_none())
            || ivr_phase.is_some_and(|p| p != super::ivr::Phase::Bridging);
        let local = self.settings.local(call.b_dest.transport);
        if late_offer && !gone {
            call.ack_awaits_answer = true;
        } else {
            let ack = dialog
                .ack(transport_name(call.b_dest.transport), &local.to_string())
                .ok()
                .and_then(|b| b.build().ok());
            if let Some(ack) = ack {
                let ack: Arc<[u8]> = Arc::from(ack);
                self.transports.send(call.b_dest, ack.clone());
                call.b_ack = Some(ack);
            }
        }
        call.b_dialog = Some(dialog);
        if ivr_phase.is_some_and(|p| p != super::ivr::Phase::Bridging) {
            // An IVR call that gave up on B (or whose caller left): hang B up.
            self.send_bye(id, Leg::B);
            return;
        }
        if call.state == State::Cancelling || (call.a_final_sent && ivr_phase.is_none()) {
            // The caller is gone: hang up the callee that answered late.
            self.send_bye(id, Leg::B);
            let st = call_status(self.calls.get(&id));
            self.end_call(id, "cancelled", st, None);
            return;
        }
        let body = if is_sdp(msg) {
            call.media
                .as_mut()
                .and_then(|m| m.answer(Leg::B, msg.body()).ok())
        } else {
            None
        };
        call.state = State::Answered;
        if ivr_phase.is_some() {
            if call.record.answer_at.is_none() {
                call.record.answer_at = Some(now_ms());
            }
            self.on_ivr_b_answered(id);
            self.count_outcome("answered");
            return;
        }
        call.record.answer_at = Some(now_ms());
        if let Ok(a_inv) = Message::parse(&call.a_invite.clone()) {
            if let Ok(mut d) = Dialog::uas(&a_inv, &call.a_tag) {
                d.confirm();
                call.a_dialog = Some(d);
            }
        }
        self.answer_a(id, 200, body.as_deref());
        if let Some(c) = self.calls.get_mut(&id) {
            c.a_final_sent = true;
        }
        let at = Instant::now() + self.settings.max_call_duration;
        self.schedule(at, id, TimerKind::MaxDuration);
        self.count_outcome("answered");
    }

    /// A 1xx (with our tag) or the 2xx to the caller's INVITE.
    pub(super) fn answer_a(&mut self, id: CallId, status: u16, sdp: Option<&[u8]>) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let Ok(inv) = Message::parse(&call.a_invite) else {
            return;
        };
        let Ok(mut b) =
            MessageBuilder::response_to(&inv, status, reason_phrase(status), Some(&call.a_tag))
        else {
            return;
        };
        b = b
            .header("Contact", &call.our_contact(&self.settings, Leg::A))
            .header("Allow", ALLOW);
        if let Some(sdp) = sdp {
            b = b.body("application/sdp", sdp);
        }
        if let Ok(bytes) = b.build() {
            let _ = self
                .layer
                .send_response(Instant::now(), call.a_tx, status, Arc::from(bytes));
        }
    }

    pub(super) fn resend_b_ack(&mut self, id: CallId) {
        if let Some(call) = self.calls.get(&id) {
            if let Some(ack) = &call.b_ack {
                self.transports.send(call.b_dest, ack.clone());
            }
        }
    }

    fn ack_and_bye_fork(&mut self, id: CallId, msg: &Message<'_>) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let Some(b_invite) = call.b_invite.clone() else {
            return;
        };
        let Ok(inv) = Message::parse(&b_invite) else {
            return;
        };
        let Ok(mut fork) = Dialog::uac(&inv, msg) else {
            return;
        };
        let local = self.settings.local(call.b_dest.transport).to_string();
        let t = transport_name(call.b_dest.transport);
        let dest = call.b_dest;
        if let Some(ack) = fork.ack(t, &local).ok().and_then(|b| b.build().ok()) {
            self.transports.send(dest, Arc::from(ack));
        }
        if let Ok(bye) = fork.new_request(Method::Bye, t, &local) {
            self.send_client(id, bye, dest, TxRole::Ignore);
        }
    }

    fn send_client(
        &mut self,
        id: CallId,
        b: MessageBuilder,
        dest: Destination,
        role: TxRole,
    ) -> Option<TransactionId> {
        let bytes = b.build().ok()?;
        let info = Message::parse(&bytes)
            .ok()
            .and_then(|m| RequestInfo::from_message(&m).ok())?;
        let tx = self
            .layer
            .send_request(Instant::now(), &info, Arc::from(bytes), dest)
            .ok()?;
        self.by_tx.insert(tx, (id, role));
        Some(tx)
    }

    /// CANCELs the B leg now if it sent a provisional, else as soon as it does.
    pub(super) fn cancel_b(&mut self, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.b_provisional {
            self.send_b_cancel(id);
        } else {
            call.cancel_pending = true;
        }
    }

    fn send_b_cancel(&mut self, id: CallId) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let Some(b_invite) = call.b_invite.clone() else {
            return;
        };
        let dest = call.b_dest;
        if let Ok(inv) = Message::parse(&b_invite) {
            if let Ok(c) = MessageBuilder::cancel_for(&inv) {
                self.send_client(id, c, dest, TxRole::Ignore);
            }
        }
    }

    /// The caller cancelled its INVITE.
    pub(super) fn on_cancel(&mut self, a_tx: TransactionId) {
        let Some((id, TxRole::AInvite)) = self.by_tx.get(&a_tx).cloned() else {
            return;
        };
        self.abandon(id, 487, "cancelled", "caller");
    }

    /// Ends an unanswered call: `status` to the caller, CANCEL to the callee.
    fn abandon(&mut self, id: CallId, status: u16, reason: &str, by: &str) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        match call.state {
            State::Answered | State::Cancelling => return,
            State::Routing | State::Ivr => {
                self.reject(id, status, reason, &[]);
                return;
            }
            State::Calling => {}
        }
        call.state = State::Cancelling;
        call.record.end_reason = reason.to_owned();
        call.record.sip_status = status;
        call.record.hangup_by = Some(by.to_owned());
        if !call.a_final_sent {
            call.a_final_sent = true;
            let (tx, raw, tag) = (call.a_tx, call.a_invite.clone(), call.a_tag.clone());
            if let Ok(inv) = Message::parse(&raw) {
                self.respond(tx, &inv, status, Some(&tag), &[]);
            }
        }
        let provisional = self.calls.get(&id).is_some_and(|c| c.b_provisional);
        if provisional {
            self.send_b_cancel(id);
        } else if let Some(c) = self.calls.get_mut(&id) {
            c.cancel_pending = true;
        }
        let at = Instant::now() + std::time::Duration::from_secs(32);
        self.schedule(at, id, TimerKind::CancelGuard);
    }

    /// An ACK for a 2xx (end-to-end). Normally nothing to relay (we ACKed the
    /// callee at once); for a late offer it carries the caller's answer, which goes
    /// to the callee in our ACK.
    pub(super) fn on_ack(&mut self, msg: &Message<'_>) {
        let Some(&id) = msg.call_id().ok().and_then(|c| self.by_callid.get(c)) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if !call.ack_awaits_answer || msg.call_id().ok() != Some(call.a_callid.as_str()) {
            return;
        }
        call.ack_awaits_answer = false;
        let body = if is_sdp(msg) {
            call.media
                .as_mut()
                .and_then(|m| m.answer(Leg::A, msg.body()).ok())
        } else {
            None
        };
        let dest = call.b_dest;
        let local = self.settings.local(dest.transport);
        let Some(dialog) = call.b_dialog.as_ref() else {
            return;
        };
        let Ok(mut b) = dialog.ack(transport_name(dest.transport), &local) else {
            return;
        };
        if let Some(sdp) = body {
            b = b.body("application/sdp", &sdp);
        }
        if let Ok(ack) = b.build() {
            let ack: Arc<[u8]> = Arc::from(ack);
            self.transports.send(dest, ack.clone());
            call.b_ack = Some(ack);
        }
    }

    /// A request inside one of our dialogs.
    pub(super) fn on_in_dialog(&mut self, tx: TransactionId, msg: &Message<'_>, raw: &[u8]) {
        let Some(method) = msg.method() else { return };
        let Some(&id) = msg.call_id().ok().and_then(|c| self.by_callid.get(c)) else {
            self.respond(tx, msg, 481, None, &[]);
            return;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            self.respond(tx, msg, 481, None, &[]);
            return;
        };
        let leg = if msg.call_id().ok() == Some(call.a_callid.as_str()) {
            Leg::A
        } else {
            Leg::B
        };
        let dialog = match leg {
            Leg::A => call.a_dialog.as_mut(),
            Leg::B => call.b_dialog.as_mut(),
        };
        let Some(dialog) = dialog else {
            self.respond(tx, msg, 481, None, &[]);
            return;
        };
        match dialog.handle_request(msg) {
            Ok(()) => {}
            Err(maskline_sip::dialog::DialogError::OutOfOrder { .. }) => {
                self.respond(tx, msg, 500, None, &[]);
                return;
            }
            Err(_) => {
                self.respond(tx, msg, 481, None, &[]);
                return;
            }
        }
        // Until B answers, the caller's dialog ends at the relay (IVR).
        let in_ivr = leg == Leg::A
            && call
                .ivr
                .as_ref()
                .is_some_and(|i| i.phase != super::ivr::Phase::Bridged);
        match method {
            Method::Info if in_ivr => {
                let ok = self.on_ivr_info(id, msg);
                self.respond(tx, msg, if ok { 200 } else { 415 }, None, &[]);
            }
            Method::Invite | Method::Update if in_ivr => {
                self.respond(tx, msg, 488, None, &[]);
            }
            Method::Bye => {
                self.on_ivr_caller_left(id);
                self.respond(tx, msg, 200, None, &[]);
                self.send_bye(id, leg.other());
                let by = if leg == Leg::A { "caller" } else { "callee" };
                self.end_call(id, "completed", 200, Some(by));
            }
            Method::Options => {
                self.respond(tx, msg, 200, None, &[("Allow", ALLOW)]);
            }
            Method::Invite | Method::Update | Method::Info => {
                self.relay_request(id, leg, tx, msg, raw, method);
            }
            _ => self.respond(tx, msg, 405, None, &[("Allow", ALLOW)]),
        }
    }

    /// Relays an in-dialog request (re-INVITE, UPDATE, INFO) to the other leg.
    fn relay_request(
        &mut self,
        id: CallId,
        from: Leg,
        tx: TransactionId,
        msg: &Message<'_>,
        raw: &[u8],
        method: Method<'_>,
    ) {
        let settings = self.settings.clone();
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let to = from.other();
        let body: Option<(String, Vec<u8>)> = if is_sdp(msg) {
            match call.media.as_mut().map(|m| m.offer(from, msg.body())) {
                Some(Ok(sdp)) => Some(("application/sdp".into(), sdp)),
                _ => {
                    self.respond(tx, msg, 488, None, &[]);
                    return;
                }
            }
        } else if !msg.body().is_empty() {
            // INFO: only DTMF bodies cross (they carry no address).
            let ct = msg.get(HeaderName::ContentType).unwrap_or("");
            let ct_l = ct.to_ascii_lowercase();
            if method == Method::Info
                && (ct_l.starts_with("application/dtmf-relay")
                    || ct_l.starts_with("application/dtmf"))
            {
                Some((ct.to_owned(), msg.body().to_vec()))
            } else {
                self.respond(tx, msg, 415, None, &[("Accept", "application/sdp")]);
                return;
            }
        } else {
            None
        };
        let dest = match to {
            Leg::A => call.a_dest,
            Leg::B => call.b_dest,
        };
        let local = self.settings.local(dest.transport).to_string();
        let contact = call.our_contact(&settings, to);
        let dialog = match to {
            Leg::A => call.a_dialog.as_mut(),
            Leg::B => call.b_dialog.as_mut(),
        };
        let Some(dialog) = dialog else {
            self.respond(tx, msg, 481, None, &[]);
            return;
        };
        let Ok(mut b) = dialog.new_request(method, transport_name(dest.transport), &local) else {
            self.respond(tx, msg, 500, None, &[]);
            return;
        };
        if matches!(method, Method::Invite | Method::Update) {
            b = b.header("Contact", &contact).header("Allow", ALLOW);
        }
        if let Some((ct, body)) = body {
            b = b.body(&ct, &body);
        }
        let role = TxRole::Relay {
            from,
            server: tx,
            request: Arc::from(raw),
        };
        if self.send_client(id, b, dest, role).is_none() {
            self.respond(tx, msg, 500, None, &[]);
        }
    }

    fn on_relay_response(
        &mut self,
        id: CallId,
        from: Leg,
        server: TransactionId,
        request: &[u8],
        msg: &Message<'_>,
    ) {
        let Some(status) = msg.status() else { return };
        if status < 200 {
            return;
        }
        let settings = self.settings.clone();
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let responder = from.other();
        let dest = match responder {
            Leg::A => call.a_dest,
            Leg::B => call.b_dest,
        };
        let method = msg.cseq().map(|c| c.method).ok();
        if let Some(d) = match responder {
            Leg::A => call.a_dialog.as_mut(),
            Leg::B => call.b_dialog.as_mut(),
        } {
            let _ = d.handle_response(msg);
            if (200..300).contains(&status) && method == Some(Method::Invite) {
                let local = self.settings.local(dest.transport).to_string();
                if let Some(ack) = d
                    .ack(transport_name(dest.transport), &local)
                    .ok()
                    .and_then(|b| b.build().ok())
                {
                    self.transports.send(dest, Arc::from(ack));
                }
            }
        }
        let body = if is_sdp(msg) {
            call.media
                .as_mut()
                .and_then(|m| m.answer(responder, msg.body()).ok())
        } else {
            None
        };
        let contact = call.our_contact(&settings, from);
        let Ok(req) = Message::parse(request) else {
            return;
        };
        let relay_status = if (300..400).contains(&status) {
            500
        } else {
            status
        };
        let Ok(mut b) =
            MessageBuilder::response_to(&req, relay_status, reason_phrase(relay_status), None)
        else {
            return;
        };
        if (200..300).contains(&status) && matches!(method, Some(Method::Invite | Method::Update)) {
            b = b.header("Contact", &contact);
        }
        if let Some(sdp) = body {
            b = b.body("application/sdp", &sdp);
        }
        if let Ok(bytes) = b.build() {
            let _ =
                self.layer
                    .send_response(Instant::now(), server, relay_status, Arc::from(bytes));
        }
    }

    /// Sends BYE on `leg`'s dialog, if it is confirmed; `relay_reason` adds a
    /// Reason header when the relay itself ends the call.
    pub(super) fn send_bye(&mut self, id: CallId, leg: Leg) {
        self.send_bye_with(id, leg, None);
    }

    fn send_bye_with(&mut self, id: CallId, leg: Leg, relay_reason: Option<&str>) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let dest = match leg {
            Leg::A => call.a_dest,
            Leg::B => call.b_dest,
        };
        let local = self.settings.local(dest.transport).to_string();
        let dialog = match leg {
            Leg::A => call.a_dialog.as_mut(),
            Leg::B => call.b_dialog.as_mut(),
        };
        let Some(dialog) = dialog else { return };
        if let Ok(b) = dialog.new_request(Method::Bye, transport_name(dest.transport), &local) {
            let b = match relay_reason {
                Some(text) => b.reason("SIP", 200, text),
                None => b,
            };
            dialog.terminate();
            self.send_client(id, b, dest, TxRole::Ignore);
        }
    }

    /// Ends a call from the relay's side: BYE to both answered legs, or the
    /// unanswered call abandoned.
    pub(super) fn hang_up_both(&mut self, id: CallId, reason: &str) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if call.ivr.is_some() && matches!(call.state, State::Ivr | State::Calling) {
            let text = format!("call ended by the relay: {reason}");
            if call.state == State::Calling {
                self.cancel_b(id);
            }
            if self.calls.get(&id).is_some_and(|c| c.a_final_sent) {
                self.send_bye_with(id, Leg::A, Some(&text));
                self.end_call(id, reason, 200, Some("relay"));
            } else {
                self.reject(id, 480, reason, &[]);
            }
            return;
        }
        match call.state {
            State::Ivr => self.end_call(id, reason, 200, Some("relay")),
            State::Answered => {
                let text = format!("call ended by the relay: {reason}");
                self.send_bye_with(id, Leg::A, Some(&text));
                self.send_bye_with(id, Leg::B, Some(&text));
                self.end_call(id, reason, 200, Some("relay"));
            }
            State::Calling | State::Routing => self.abandon(id, 480, reason, "relay"),
            State::Cancelling => self.end_call(id, reason, 487, None),
        }
    }

    /// Every live call ends (shutdown past the drain timeout).
    pub(super) fn end_all(&mut self, reason: &str) {
        let ids: Vec<CallId> = self.calls.keys().copied().collect();
        for id in ids {
            self.hang_up_both(id, reason);
            if self.calls.contains_key(&id) {
                self.end_call(id, reason, 503, Some("relay"));
            }
        }
    }

    pub(super) fn on_call_timer(&mut self, id: CallId, kind: TimerKind) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        match (kind, call.state) {
            (TimerKind::Ivr(gen), _) => self.on_ivr_timer(id, gen),
            (TimerKind::NoAnswer, State::Calling) if call.ivr.is_some() => {
                self.cancel_b(id);
                self.on_ivr_b_failed(id, 480);
            }
            (TimerKind::NoAnswer, State::Calling) => self.abandon(id, 480, "no_answer", "relay"),
            (TimerKind::MaxDuration, State::Answered) => self.hang_up_both(id, "max_duration"),
            (TimerKind::CancelGuard, State::Cancelling) => {
                let reason = call.record.end_reason.clone();
                self.end_call(id, &reason, 487, None);
            }
            _ => {}
        }
    }

    /// A client transaction of the call got no answer (timer B/F) or failed to send.
    pub(super) fn on_call_tx_timeout(&mut self, id: CallId, role: TxRole) {
        match role {
            TxRole::BInvite => {
                let Some(call) = self.calls.get(&id) else {
                    return;
                };
                match call.state {
                    State::Calling if call.ivr.is_some() => self.on_ivr_b_failed(id, 408),
                    State::Calling => self.reject(id, 408, "callee_timeout", &[]),
                    State::Cancelling => {
                        let reason = call.record.end_reason.clone();
                        self.end_call(id, &reason, 487, None);
                    }
                    _ => {}
                }
            }
            TxRole::Relay {
                server, request, ..
            } => {
                if let Ok(req) = Message::parse(&request) {
                    self.respond(server, &req, 408, None, &[]);
                }
            }
            TxRole::AInvite | TxRole::Ignore => {}
        }
    }

    /// Removes the call and writes its record.
    pub(super) fn end_call(&mut self, id: CallId, reason: &str, status: u16, by: Option<&str>) {
        let Some(mut call) = self.calls.remove(&id) else {
            return;
        };
        self.by_callid.remove(&call.a_callid);
        if let Some(b) = &call.b_callid {
            self.by_callid.remove(b);
        }
        let now: UnixMs = now_ms();
        let r = &mut call.record;
        if r.end_reason.is_empty() || reason != "cancelled" {
            r.end_reason = reason.to_owned();
        }
        if r.sip_status == 0 || status != 487 {
            r.sip_status = if r.answer_at.is_some() { 200 } else { status };
        }
        if by.is_some() {
            r.hangup_by = by.map(str::to_owned);
        }
        if let Some(i) = &call.ivr {
            r.ivr = i.outcome.map(str::to_owned);
        }
        r.end_at = now;
        r.duration_ms = r
            .answer_at
            .map_or(0, |a| u64::try_from(now.saturating_sub(a)).unwrap_or(0));
        let outcome: &'static str = match r.end_reason.as_str() {
            "completed" => "completed",
            "no_binding" => "no_binding",
            "unknown_number" => "unknown_number",
            "busy" => "busy",
            "no_answer" => "no_answer",
            "cancelled" => "cancelled",
            "store_unavailable" => "store_unavailable",
            "media_timeout" => "media_timeout",
            "max_duration" => "max_duration",
            "callee_timeout" => "callee_timeout",
            "ports_exhausted" => "ports_exhausted",
            "shutdown" => "shutdown",
            "not_serving" | "wrong_extension" | "no_digits" => "ivr_ended",
            _ => "failed",
        };
        if outcome != "completed" {
            self.count_outcome(outcome);
        }
        tracing::info!(
            call.record = %r.id,
            number = %call.number,
            caller = %call.caller,
            reason = %r.end_reason,
            status = r.sip_status,
            duration_ms = r.duration_ms,
            "sip: call ended"
        );
        let _ = self.records.send((call.record, Some(call.caller)));
    }
}

fn call_status(call: Option<&Call>) -> u16 {
    call.map_or(487, |c| {
        if c.record.sip_status == 0 {
            487
        } else {
            c.record.sip_status
        }
    })
}
