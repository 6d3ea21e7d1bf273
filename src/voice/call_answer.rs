//! The B2BUA's progress towards an answer: the callee's responses to our INVITE
//! (provisional, answer, forks, failures), our answers to the caller, CANCEL in
//! both directions, and the ACKs (including a late offer's answer). Part of the
//! call flow in [`super::call`].

use std::sync::Arc;
use std::time::Instant;

use maskline_sip::dialog::Dialog;
use maskline_sip::transaction::{Destination, RequestInfo, TransactionError, TransactionId};
use maskline_sip::{Message, MessageBuilder, Method};

use super::call::{is_sdp, transport_name, CallId, State, TxRole};
use super::call_dialog::call_status;
use super::engine::{reason_phrase, Engine, TimerKind};
use crate::bindings::now_ms;
use crate::media::Leg;

impl Engine {
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

    pub(super) fn on_b_invite_response(&mut self, id: CallId, msg: &Message<'_>) {
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

    pub(super) fn on_b_answer(&mut self, id: CallId, msg: &Message<'_>) {
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
                .ack(transport_name(call.b_dest.transport), local)
                .ok()
                .and_then(|b| b.build().ok());
            if let Some(ack) = ack {
                let ack: Arc<[u8]> = Arc::from(ack);
                self.outbox.push((call.b_dest, ack.clone()));
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
        // The template carries the To tag and Record-Route that 101-299 take
        // (every caller sends 180, 183 or 200).
        let Some(template) = call
            .a_reply
            .as_ref()
            .filter(|_| (101..=299).contains(&status))
        else {
            return;
        };
        let mut b = template.clone().with_status(status, reason_phrase(status));
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
                self.send(call.b_dest, ack.clone());
            }
        }
    }

    pub(super) fn ack_and_bye_fork(&mut self, id: CallId, msg: &Message<'_>) {
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
            self.send(dest, Arc::from(ack));
        }
        if let Ok(bye) = fork.new_request(Method::Bye, t, &local) {
            self.send_client(id, bye, dest, TxRole::Ignore);
        }
    }

    pub(super) fn send_client(
        &mut self,
        id: CallId,
        b: MessageBuilder,
        dest: Destination,
        role: TxRole,
    ) -> Option<TransactionId> {
        self.start_client(id, b, dest, role).ok().map(|(tx, _)| tx)
    }

    /// Builds the request, starts its client transaction towards `dest` and
    /// files it under call `id` as `role`; gives back the transaction and the
    /// bytes sent. `Err(None)`: the request could not be built.
    pub(super) fn start_client(
        &mut self,
        id: CallId,
        b: MessageBuilder,
        dest: Destination,
        role: TxRole,
    ) -> Result<(TransactionId, Arc<[u8]>), Option<TransactionError>> {
        let bytes: Arc<[u8]> = Arc::from(b.build().map_err(|_| None)?);
        // Built here: read its transaction fields without parsing it whole.
        let info = RequestInfo::from_bytes(&bytes).map_err(|_| None)?;
        let tx = self
            .layer
            .send_request(Instant::now(), &info, bytes.clone(), dest)
            .map_err(Some)?;
        self.by_tx.insert(tx, (id, role));
        Ok((tx, bytes))
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

    pub(super) fn send_b_cancel(&mut self, id: CallId) {
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
    pub(super) fn abandon(&mut self, id: CallId, status: u16, reason: &str, by: &str) {
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
        let Ok(mut b) = dialog.ack(transport_name(dest.transport), local) else {
            return;
        };
        if let Some(sdp) = body {
            b = b.body("application/sdp", &sdp);
        }
        if let Ok(ack) = b.build() {
            let ack: Arc<[u8]> = Arc::from(ack);
            self.outbox.push((dest, ack.clone()));
            call.b_ack = Some(ack);
        }
    }
}
