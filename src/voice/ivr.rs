//! Calls the relay answers itself: the extension IVR of printed waybills, the
//! announcements played instead of bare rejections, and the AXN default party.
//!
//! Flow (one [`IvrCall`] in the [`super::call::Call`], driven by the engine):
//! answer A with the relay's own SDP (200, or 183 with `early_media`) → play
//! "enter your extension" → collect digits (RFC 4733 from the media relay, SIP
//! INFO `application/dtmf-relay` / `application/dtmf` as fallbacks; digits sent
//! right after the answer cut the prompt short) → on `#`, on the pool's
//! extension length or after the inter-digit timeout, look the extension up
//! (one store round trip) → bridge to the binding's courier with caller ID X
//! (the B leg gets A's offer reduced to the codec A was answered with). A wrong
//! extension re-prompts, at most `max_tries` times, then the goodbye prompt and
//! BYE. An extension whose binding ended plays "no longer serves your parcel".
//! No digits (or `#` alone) reach the pool's default party when it has one.

use std::sync::Arc;
use std::time::Instant;

use maskline_sip::dialog::Dialog;
use maskline_sip::{HeaderName, Message};

use super::call::{CallId, State};
use super::engine::{Engine, Internal, TimerKind};
use crate::bindings::{now_ms, ExtensionRoute};
use crate::media::prompt::{PromptKind, PromptSet};
use crate::media::{Advertise, Leg, MediaError, MediaEvent};
use crate::numbers::E164;

/// Where an IVR call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Prompting and collecting digits.
    Collecting,
    /// The extension is being looked up.
    LookingUp,
    /// The B leg is being called.
    Bridging,
    /// B answered: a bridged call like any other.
    Bridged,
    /// Playing a last prompt; BYE when it ends.
    Ending,
}

/// The IVR state of a call the relay answered.
#[derive(Debug)]
pub struct IvrCall {
    pool: String,
    prompts: Arc<PromptSet>,
    /// Digits of the pool's extensions; `None` for an announcement only.
    ext_len: Option<u8>,
    digits: String,
    /// The last extension was complete at its length, before any `#`: a `#` that
    /// follows ends it (callers key "extension#" from habit), not a new empty try.
    hash_ends_last: bool,
    tries: u8,
    pub(super) phase: Phase,
    b_offer: Vec<u8>,
    a_sdp: Vec<u8>,
    pub(super) early: bool,
    /// Generation of the IVR timer: older timers are stale.
    gen: u32,
    default_party: Option<E164>,
    /// The IVR outcome for the record.
    pub(super) outcome: Option<&'static str>,
    /// Why the call ends (record `end_reason`) when the IVR ends it.
    end_reason: &'static str,
}

/// A DTMF digit from a SIP INFO body (`application/dtmf-relay`: `Signal=5`;
/// `application/dtmf`: `5`).
pub fn info_digit(content_type: &str, body: &[u8]) -> Option<char> {
    let text = std::str::from_utf8(body).ok()?;
    let ct = content_type.to_ascii_lowercase();
    let v = if ct.starts_with("application/dtmf-relay") {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            k.trim().eq_ignore_ascii_case("signal").then(|| v.trim())
        })?
    } else if ct.starts_with("application/dtmf") {
        text.trim()
    } else {
        return None;
    };
    match v {
        "10" => Some('*'),
        "11" => Some('#'),
        s if s.len() == 1 => s
            .chars()
            .next()
            .filter(|c| c.is_ascii_digit() || matches!(c, '*' | '#')),
        _ => None,
    }
}

impl Engine {
    /// Answers the caller and starts the IVR (`ext_len` given) or the
    /// no-route announcement (`None`).
    pub(super) fn start_ivr(&mut self, id: CallId, pool: String, ext_len: Option<u8>) {
        let policy = self.router.ivr().clone();
        let settings = policy.pool(&pool).cloned();
        let Some(prompts) = policy.prompts(&pool) else {
            self.refuse_no_binding(id, pool);
            return;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.record.pool = Some(pool.clone());
        let ip = self.trunks.get(call.trunk).and_then(|t| t.media_ip);
        let a_invite = call.a_invite.clone();
        let Ok(inv) = Message::parse(&a_invite) else {
            return;
        };
        if !super::call::is_sdp(&inv) {
            // Late offer: the relay would have to offer itself; not supported.
            self.refuse(id, 488, "failed");
            return;
        }
        let mut media = match self.media.allocate(Advertise { a: ip, b: ip }) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "sip: no media ports for the IVR: 503");
                self.refuse(id, 503, "ports_exhausted");
                return;
            }
        };
        let la = match media.answer_locally(inv.body()) {
            Ok(a) => a,
            Err(e @ (MediaError::BadSdp(_) | MediaError::NoG711)) => {
                tracing::info!(error = %e, "sip: cannot answer the caller's SDP: 488");
                self.refuse(id, 488, "failed");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "sip: media error: 503");
                self.refuse(id, 503, "failed");
                return;
            }
        };
        let mut events = media.take_events();
        let tx = self.internal_tx.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if tx.send(Internal::Media { call: id, event }).is_err() {
                    break;
                }
            }
        });
        let early = settings.as_ref().is_some_and(|s| s.early_media);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.media = Some(media);
        call.state = State::Ivr;
        call.ivr = Some(Box::new(IvrCall {
            pool,
            prompts,
            ext_len,
            digits: String::new(),
            hash_ends_last: false,
            tries: 0,
            phase: Phase::Collecting,
            b_offer: la.b_offer,
            a_sdp: la.sdp.clone(),
            early,
            gen: 0,
            default_party: settings.and_then(|s| s.default_party),
            outcome: None,
            end_reason: "completed",
        }));
        if early {
            self.answer_a(id, 183, Some(&la.sdp));
        } else {
            self.answer_a_with_dialog(id, &la.sdp);
        }
        match ext_len {
            Some(_) => self.prompt(id, PromptKind::EnterExtension),
            None => self.end_with(id, PromptKind::NotServing, "no_route", "no_binding"),
        }
    }

    /// The 200 to the caller's INVITE, with the caller's dialog set up.
    pub(super) fn answer_a_with_dialog(&mut self, id: CallId, sdp: &[u8]) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if let Ok(a_inv) = Message::parse(&call.a_invite.clone()) {
            if let Ok(mut d) = Dialog::uas(&a_inv, &call.a_tag) {
                d.confirm();
                call.a_dialog = Some(d);
            }
        }
        call.a_final_sent = true;
        if call.record.answer_at.is_none() {
            call.record.answer_at = Some(now_ms());
        }
        self.answer_a(id, 200, Some(sdp));
        let at = Instant::now() + self.settings.max_call_duration;
        self.schedule(at, id, TimerKind::MaxDuration);
    }

    fn refuse_no_binding(&mut self, id: CallId, pool: String) {
        if let Some(c) = self.calls.get_mut(&id) {
            c.record.pool = Some(pool);
        }
        let status = self.settings.no_binding_status;
        let text = format!("SIP;cause={status};text=\"no live binding for this caller\"");
        self.reject(id, status, "no_binding", &[("Reason", &text)]);
    }

    fn refuse(&mut self, id: CallId, status: u16, reason: &str) {
        self.reject(id, status, reason, &[]);
    }

    /// Plays `kind` and arms the IVR timer (prompt length + first-digit timeout).
    fn prompt(&mut self, id: CallId, kind: PromptKind) {
        let first = self.router.ivr().first_digit;
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let (Some(ivr), Some(media)) = (call.ivr.as_mut(), call.media.as_mut()) else {
            return;
        };
        let p = ivr.prompts.get(kind).clone();
        let _ = media.play(&p);
        ivr.gen = ivr.gen.wrapping_add(1);
        let (gen, at) = (ivr.gen, Instant::now() + p.duration() + first);
        self.schedule(at, id, TimerKind::Ivr(gen));
    }

    /// Re-arms the IVR timer to fire after `after`.
    fn rearm(&mut self, id: CallId, after: std::time::Duration) {
        let Some(ivr) = self.calls.get_mut(&id).and_then(|c| c.ivr.as_mut()) else {
            return;
        };
        ivr.gen = ivr.gen.wrapping_add(1);
        let gen = ivr.gen;
        self.schedule(Instant::now() + after, id, TimerKind::Ivr(gen));
    }

    /// Plays a last prompt, then hangs up (record: `outcome`, `end_reason`).
    fn end_with(
        &mut self,
        id: CallId,
        kind: PromptKind,
        outcome: &'static str,
        reason: &'static str,
    ) {
        let Some(ivr) = self.calls.get_mut(&id).and_then(|c| c.ivr.as_mut()) else {
            return;
        };
        ivr.phase = Phase::Ending;
        if ivr.outcome.is_none() || outcome != "extension" {
            ivr.outcome = Some(outcome);
        }
        ivr.end_reason = reason;
        let len = ivr.prompts.get(kind).duration();
        self.prompt(id, kind);
        // The timer ends the call if the "prompt done" event never comes.
        self.rearm(id, len + std::time::Duration::from_millis(500));
    }

    /// Ends the call after the last prompt: BYE (or a final error response
    /// with early media) to the caller.
    fn finish(&mut self, id: CallId) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let reason = call.ivr.as_ref().map_or("completed", |i| i.end_reason);
        if !call.a_final_sent {
            self.reject(id, 480, reason, &[]);
            return;
        }
        self.send_bye(id, Leg::A);
        self.end_call(id, reason, 200, Some("relay"));
    }

    /// A media event of an IVR call.
    pub(super) fn on_ivr_media(&mut self, id: CallId, event: MediaEvent) {
        match event {
            MediaEvent::Dtmf(d) => self.on_ivr_digit(id, d),
            MediaEvent::PromptDone => {
                let Some(ivr) = self.calls.get(&id).and_then(|c| c.ivr.as_ref()) else {
                    return;
                };
                match ivr.phase {
                    Phase::Ending => self.finish(id),
                    Phase::Collecting if ivr.digits.is_empty() => {
                        let first = self.router.ivr().first_digit;
                        self.rearm(id, first);
                    }
                    _ => {}
                }
            }
            MediaEvent::Timeout => {
                metrics::counter!("maskline_media_timeouts_total").increment(1);
                self.hang_up_both(id, "media_timeout");
            }
        }
    }

    /// A digit from the caller (RTP event or SIP INFO).
    pub(super) fn on_ivr_digit(&mut self, id: CallId, d: char) {
        let inter = self.router.ivr().inter_digit;
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let (Some(ivr), Some(media)) = (call.ivr.as_mut(), call.media.as_mut()) else {
            return;
        };
        let ends_last = std::mem::take(&mut ivr.hash_ends_last);
        if ivr.phase != Phase::Collecting || (d == '#' && ends_last && ivr.digits.is_empty()) {
            return;
        }
        // Barge-in: the first digit ends the prompt (digits right after the
        // answer, from the dial string's pause, are caught the same way).
        if ivr.digits.is_empty() {
            let _ = media.stop_prompt();
        }
        match d {
            '#' if ivr.digits.is_empty() => self.no_extension(id),
            '#' => self.look_up(id),
            '*' => {
                ivr.digits.clear();
                self.prompt(id, PromptKind::EnterExtension);
            }
            '0'..='9' => {
                ivr.digits.push(d);
                let len = ivr.digits.len();
                let full = ivr.ext_len.is_some_and(|l| len >= usize::from(l));
                if full || len >= usize::from(crate::bindings::MAX_EXTENSION_LEN) {
                    ivr.hash_ends_last = true;
                    self.look_up(id);
                } else {
                    self.rearm(id, inter);
                }
            }
            _ => {}
        }
    }

    /// The caller keyed no extension: the default party, or a try used up.
    fn no_extension(&mut self, id: CallId) {
        let Some(ivr) = self.calls.get(&id).and_then(|c| c.ivr.as_ref()) else {
            return;
        };
        match ivr.default_party.clone() {
            Some(party) => {
                if let Some(c) = self.calls.get_mut(&id) {
                    c.record.via = Some("default_party".into());
                    if let Some(i) = c.ivr.as_mut() {
                        i.outcome = Some("default_party");
                    }
                }
                self.bridge_to(id, party);
            }
            None => self.wrong_try(id, "no_digits", PromptKind::EnterExtension),
        }
    }

    /// A wrong (or missing) extension: prompt again, or give up after the last try.
    fn wrong_try(&mut self, id: CallId, outcome: &'static str, again: PromptKind) {
        let max = self.router.ivr().max_tries;
        let Some(ivr) = self.calls.get_mut(&id).and_then(|c| c.ivr.as_mut()) else {
            return;
        };
        ivr.tries += 1;
        ivr.digits.clear();
        ivr.phase = Phase::Collecting;
        if ivr.tries >= max {
            self.end_with(id, PromptKind::Goodbye, outcome, outcome);
        } else {
            self.prompt(id, again);
        }
    }

    /// The IVR timer fired.
    pub(super) fn on_ivr_timer(&mut self, id: CallId, gen: u32) {
        let Some(ivr) = self.calls.get(&id).and_then(|c| c.ivr.as_ref()) else {
            return;
        };
        if ivr.gen != gen {
            return;
        }
        match ivr.phase {
            Phase::Collecting if ivr.digits.is_empty() => self.no_extension(id),
            Phase::Collecting => self.look_up(id),
            Phase::Ending => self.finish(id),
            _ => {}
        }
    }

    /// Looks the collected extension up (a task; the answer comes back as
    /// [`Internal::Extension`]).
    fn look_up(&mut self, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let number = call.number.clone();
        let Some(ivr) = call.ivr.as_mut() else {
            return;
        };
        ivr.phase = Phase::LookingUp;
        ivr.gen = ivr.gen.wrapping_add(1);
        let (pool, ext) = (ivr.pool.clone(), std::mem::take(&mut ivr.digits));
        let store = self.router.store().clone();
        let tx = self.internal_tx.clone();
        tokio::spawn(async move {
            let result = store.route_extension(&pool, &number, &ext, now_ms()).await;
            let _ = tx.send(Internal::Extension { call: id, result });
        });
    }

    /// The extension lookup came back.
    pub(super) fn on_extension(
        &mut self,
        id: CallId,
        result: Result<ExtensionRoute, crate::store::StoreError>,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.ivr.as_ref().map(|i| i.phase) != Some(Phase::LookingUp) {
            return;
        }
        match result {
            Ok(ExtensionRoute::Live(route)) => {
                call.record.binding_id = Some(route.binding_id.to_string());
                call.record.shipment_id = route.shipment_id.clone();
                call.record.via = Some("extension".into());
                if let Some(i) = call.ivr.as_mut() {
                    i.outcome = Some("extension");
                }
                self.bridge_to(id, route.callee);
            }
            Ok(ExtensionRoute::Ended) => {
                self.end_with(id, PromptKind::NotServing, "not_serving", "not_serving");
            }
            Ok(ExtensionRoute::Unknown) => {
                self.wrong_try(id, "wrong_extension", PromptKind::InvalidExtension);
            }
            Err(e) => {
                tracing::warn!(error = %e, "sip: extension lookup failed");
                self.end_with(
                    id,
                    PromptKind::Goodbye,
                    "store_unavailable",
                    "store_unavailable",
                );
            }
        }
    }

    /// Calls `callee` (caller ID X) with the offer prepared when A was answered.
    fn bridge_to(&mut self, id: CallId, callee: E164) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(ivr) = call.ivr.as_mut() else {
            return;
        };
        ivr.phase = Phase::Bridging;
        ivr.gen = ivr.gen.wrapping_add(1);
        let offer = ivr.b_offer.clone();
        if let Some(m) = call.media.as_mut() {
            let _ = m.stop_prompt();
        }
        self.place_b_leg(id, callee, Some(offer));
    }

    /// The B leg of an IVR call failed (error response, no answer, timeout):
    /// goodbye prompt, then BYE.
    pub(super) fn on_ivr_b_failed(&mut self, id: CallId, status: u16) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(ivr) = call.ivr.as_ref() else {
            return;
        };
        if ivr.phase != Phase::Bridging {
            return;
        }
        call.state = State::Ivr;
        let reason = match status {
            486 | 600 => "busy",
            408 | 480 => "no_answer",
            603 => "declined",
            _ => "failed",
        };
        let outcome = ivr.outcome.unwrap_or("extension");
        self.end_with(id, PromptKind::Goodbye, outcome, reason);
    }

    /// B answered an IVR call: forward media between the legs (and answer A now
    /// with early media).
    pub(super) fn on_ivr_b_answered(&mut self, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(ivr) = call.ivr.as_mut() else {
            return;
        };
        ivr.phase = Phase::Bridged;
        ivr.gen = ivr.gen.wrapping_add(1);
        let (early, sdp) = (ivr.early, ivr.a_sdp.clone());
        if let Some(m) = call.media.as_mut() {
            let _ = m.bridge();
        }
        if early {
            self.answer_a_with_dialog(id, &sdp);
        }
    }

    /// The caller hung up (BYE) before the call was bridged.
    pub(super) fn on_ivr_caller_left(&mut self, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(ivr) = call.ivr.as_mut() else {
            return;
        };
        if ivr.phase == Phase::Bridged {
            return;
        }
        if ivr.phase != Phase::Ending && ivr.outcome.is_none() {
            ivr.outcome = Some("caller_hung_up");
        }
        if ivr.phase == Phase::Bridging {
            ivr.phase = Phase::Ending;
            self.cancel_b(id);
        }
    }

    /// A SIP INFO from the caller while the IVR collects: a DTMF fallback.
    pub(super) fn on_ivr_info(&mut self, id: CallId, msg: &Message<'_>) -> bool {
        let ct = msg.get(HeaderName::ContentType).unwrap_or("");
        match info_digit(ct, msg.body()) {
            Some(d) => {
                self.on_ivr_digit(id, d);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_bodies_give_digits() {
        assert_eq!(
            info_digit("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n"),
            Some('5')
        );
        assert_eq!(
            info_digit("application/dtmf-relay", b"Signal= #\r\n"),
            Some('#')
        );
        assert_eq!(
            info_digit("application/dtmf-relay", b"Signal=11\r\n"),
            Some('#')
        );
        assert_eq!(info_digit("application/dtmf", b"7"), Some('7'));
        assert_eq!(info_digit("application/dtmf", b"x"), None);
        assert_eq!(info_digit("text/plain", b"5"), None);
    }
}
