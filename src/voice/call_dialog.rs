//! The B2BUA inside confirmed dialogs and at the end of calls: in-dialog requests
//! relayed between the legs (re-INVITE, UPDATE, INFO) or answered (BYE, OPTIONS),
//! relay-initiated hang-ups, call timers, transaction failures, and the call
//! record written when a call ends. Part of the call flow in [`super::call`].

use std::sync::Arc;
use std::time::Instant;

use maskline_sip::transaction::TransactionId;
use maskline_sip::{HeaderName, Message, MessageBuilder, Method};

use super::call::{is_sdp, transport_name, Call, CallId, State, TxRole};
use super::engine::{reason_phrase, Engine, TimerKind, ALLOW};
use crate::bindings::{now_ms, UnixMs};
use crate::media::Leg;

impl Engine {
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
    pub(super) fn relay_request(
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

    pub(super) fn on_relay_response(
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
                    self.outbox.push((dest, Arc::from(ack)));
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

    pub(super) fn send_bye_with(&mut self, id: CallId, leg: Leg, relay_reason: Option<&str>) {
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

pub(super) fn call_status(call: Option<&Call>) -> u16 {
    call.map_or(487, |c| {
        if c.record.sip_status == 0 {
            487
        } else {
            c.record.sip_status
        }
    })
}
