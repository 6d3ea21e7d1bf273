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
use maskline_sip::transaction::{Destination, TransactionId, Transport};
use maskline_sip::Message;

use super::engine::Engine;
use super::router::Decision;
use crate::bindings::now_ms;
use crate::events::{CallRecord, Direction};
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
    /// Our 1xx/2xx to the caller's INVITE up to its status line (Via, From, To
    /// with our tag, Call-ID, CSeq, Record-Route, Contact, Allow), built when
    /// the INVITE arrived so that each answer does not parse it again.
    pub(super) a_reply: Option<maskline_sip::MessageBuilder>,
    /// The caller's Max-Forwards, less one (at most 70).
    pub(super) a_max_forwards: u8,
    /// The caller's SDP offer, if the INVITE had one.
    pub(super) a_sdp: Option<Box<[u8]>>,
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
    pub(super) fn our_contact(&self, settings: &super::VoiceSettings, leg: Leg) -> String {
        let (transport, addr) = match leg {
            Leg::A => (self.a_dest.transport, settings.local(self.a_dest.transport)),
            Leg::B => (self.b_dest.transport, settings.local(self.b_dest.transport)),
        };
        let t = match transport {
            Transport::Tcp => ";transport=tcp",
            Transport::Tls => ";transport=tls",
            _ => "",
        };
        ["<sip:", self.number.digits(), "@", addr, t, ">"].concat()
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
            id: record_id(),
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
        let mut call = Call {
            state: State::Routing,
            trunk,
            received,
            a_dest: dest,
            a_invite: Arc::from(raw),
            a_reply: None,
            a_max_forwards: msg
                .max_forwards()
                .ok()
                .flatten()
                .map_or(70, |m| m.saturating_sub(1).min(70)),
            a_sdp: is_sdp(msg).then(|| Box::from(msg.body())),
            a_tx: tx,
            a_tag: super::shard::a_tag(self.shards.index),
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
        let contact = call.our_contact(&self.settings, Leg::A);
        call.a_reply = maskline_sip::MessageBuilder::response_to(msg, 200, "OK", Some(&call.a_tag))
            .ok()
            .map(|b| {
                b.header("Contact", &contact)
                    .header("Allow", super::engine::ALLOW)
            });
        self.calls.insert(id, call);
        self.by_tx.insert(tx, (id, TxRole::AInvite));
        self.by_callid.insert(a_callid, id);
        self.lookup(id, number, caller);
    }

    pub(super) fn count_outcome(&self, outcome: &'static str) {
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
                    c.record.shipment_id = route.shipment_id.clone();
                    c.record.direction = route.caller_is_a.map(|a| {
                        if a {
                            Direction::CourierToCustomer
                        } else {
                            Direction::CustomerToCourier
                        }
                    });
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
        let offer = if let Some(sdp) = &call.a_sdp {
            match media.offer(Leg::A, sdp) {
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
}

/// A call record's id: a UUID v7 whose random bits come from the thread's
/// generator (`Uuid::now_v7` asks the kernel for them, a system call per call).
fn record_id() -> String {
    let ms = u64::try_from(now_ms()).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(ms, &rand::random::<[u8; 10]>())
        .into_uuid()
        .to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn record_ids_are_distinct_v7_uuids_of_now() {
        let before = u64::try_from(now_ms()).unwrap();
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| record_id()).collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            let u: uuid::Uuid = id.parse().unwrap();
            assert_eq!(u.get_version_num(), 7);
            let (secs, nanos) = u.get_timestamp().unwrap().to_unix();
            let ms = secs * 1000 + u64::from(nanos) / 1_000_000;
            assert!(ms >= before && ms <= before + 60_000, "{ms} vs {before}");
        }
    }
}
