//! Placing the B leg of a call: the INVITE to the callee through the trunk's
//! gateway, every header written from the allow-list (X as From and
//! P-Asserted-Identity, our Call-ID, tags and Contact), for a routed call, a call
//! to a default party, or a call the IVR bridges.

use std::time::Instant;

use maskline_sip::transaction::TransactionError;
use maskline_sip::{MessageBuilder, Method};

use super::call::{transport_name, CallId, State, TxRole};
use super::engine::{Engine, TimerKind, ALLOW};
use crate::media::Leg;
use crate::numbers::E164;

impl Engine {
    /// Places the B leg: an INVITE to `callee` from X through the trunk's gateway,
    /// with `offer` (already rewritten by the call's media session).
    pub(super) fn place_b_leg(&mut self, id: CallId, callee: E164, offer: Option<Vec<u8>>) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let max_forwards = call.a_max_forwards;
        call.record.callee = Some(callee.masked());
        let b_dest = call.b_dest;
        let local = self.settings.local(b_dest.transport);
        let b_callid = super::shard::b_call_id(self.shards.index);
        let from_tag = maskline_sip::new_tag();
        let contact = call.our_contact(&self.settings, Leg::B);
        let x = call.number.expose();
        let gateway = b_dest.addr.to_string();
        let uri = ["sip:", callee.expose(), "@", &gateway].concat();
        let mut b = MessageBuilder::request(Method::Invite, &uri)
            .via(
                transport_name(b_dest.transport),
                local,
                &maskline_sip::new_branch(),
            )
            .max_forwards(max_forwards)
            .header_parts("From", &["<sip:", x, "@", local, ">;tag=", &from_tag])
            .header_parts("To", &["<", &uri, ">"])
            .header("Call-ID", &b_callid)
            .cseq(1, Method::Invite)
            .header("Contact", &contact)
            .header_parts("P-Asserted-Identity", &["<sip:", x, "@", local, ">"])
            .header("Allow", ALLOW);
        if let Some(sdp) = offer {
            b = b.body_owned("application/sdp", sdp);
        }
        let (payload, now) = match self.start_client(id, b, b_dest, TxRole::BInvite) {
            Ok((_, payload)) => (payload, Instant::now()),
            Err(None) => {
                self.b_leg_failed(id, 500, &[]);
                return;
            }
            Err(Some(e)) => {
                if matches!(e, TransactionError::Overloaded) {
                    metrics::counter!("maskline_sip_transactions_full_total").increment(1);
                }
                self.b_leg_failed(id, 503, &[("Retry-After", "1")]);
                return;
            }
        };
        if let Some(call) = self.calls.get_mut(&id) {
            call.state = State::Calling;
            call.b_invite = Some(payload);
            call.b_callid = Some(b_callid.clone());
            metrics::histogram!("maskline_call_setup_seconds")
                .record(call.received.elapsed().as_secs_f64());
        }
        self.by_callid.insert(b_callid, id);
        let at = now + self.settings.no_answer_timeout;
        self.schedule(at, id, TimerKind::NoAnswer);
    }

    /// The B leg could not be sent: refuse the caller, or (IVR, the caller is
    /// answered already) play goodbye and hang up.
    fn b_leg_failed(&mut self, id: CallId, status: u16, extra: &[(&str, &str)]) {
        if self.calls.get(&id).is_some_and(|c| c.ivr.is_some()) {
            self.on_ivr_b_failed(id, status);
        } else {
            self.reject(id, status, "failed", extra);
        }
    }
}
