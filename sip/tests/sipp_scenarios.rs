//! SIPp with custom scenarios (`tests/sipp/*.xml`, written for these tests)
//! against a small UAS that drives this crate only (`Message::parse` +
//! `validate`, `TransactionLayer`, `Dialog`, `MessageBuilder`, `sdp`):
//! CANCEL of a ringing INVITE, a non-2xx final response and its ACK, and a
//! re-INVITE in a dialog. The flows SIPp's built-in `uac` never sends.
//!
//! The tests fail (they do not skip) when `sipp` is not installed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sipp_support;

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use maskline_sip::dialog::{Dialog, DialogId, DialogState};
use maskline_sip::transaction::{
    Destination, RequestDisposition, RequestInfo, ResponseInfo, ServerState, TransactionId,
    TransactionLayer, Transport,
};
use maskline_sip::{new_tag, HeaderName, Message, MessageBuilder, Method};
use sipp_support::{
    args, bind, free_port, pump, recv, sdp_from, wait_budget, Running, Sipp, SIPP_DEADLINE,
};

/// How our UAS treats a new (out-of-dialog) INVITE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// 100 and 180, then nothing: the caller has to CANCEL.
    Ring,
    /// 100, then this non-2xx final status.
    Reject(u16, &'static str),
    /// 100, 180, 200 with an SDP answer; re-INVITEs in the dialog get 200.
    Answer,
}

/// What our UAS saw.
#[derive(Debug, Default)]
struct Stats {
    /// INVITE server transactions of new calls.
    invites: Vec<TransactionId>,
    /// Each CANCEL: its own transaction and the INVITE one it matched.
    cancels: Vec<(TransactionId, Option<TransactionId>)>,
    /// Final statuses we sent, per INVITE transaction.
    finals: Vec<(TransactionId, u16)>,
    /// Requests the transaction layer absorbed (retransmissions and ACKs of
    /// non-2xx final responses).
    absorbed: Vec<TransactionId>,
    /// ACKs of 2xx accepted by a dialog, with their CSeq.
    dialog_acks: Vec<u32>,
    /// re-INVITEs accepted by the dialog, with their CSeq.
    reinvites: Vec<u32>,
    /// BYEs that ended a dialog.
    byes: usize,
    anomalies: Vec<String>,
}

struct Uas {
    sock: UdpSocket,
    addr: SocketAddr,
    mode: Mode,
    layer: TransactionLayer,
    /// INVITEs not finally answered yet: their bytes and our To tag.
    ringing: HashMap<TransactionId, (Vec<u8>, String)>,
    dialogs: HashMap<DialogId, Dialog>,
    stats: Stats,
}

impl Uas {
    fn new(mode: Mode) -> Uas {
        let sock = bind();
        let addr = sock.local_addr().unwrap();
        Uas {
            sock,
            addr,
            mode,
            layer: TransactionLayer::new(Default::default()),
            ringing: HashMap::new(),
            dialogs: HashMap::new(),
            stats: Stats::default(),
        }
    }

    /// Runs in a thread until [`Running::finish`]; on stop it still reads
    /// what is queued on its socket.
    fn spawn(mut self) -> Running<Uas> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = thread::spawn(move || {
            let mut buf = vec![0u8; 65_535];
            loop {
                let stopping = flag.load(Ordering::Relaxed);
                let budget = if stopping {
                    Duration::from_millis(50)
                } else {
                    wait_budget(&self.layer, Duration::from_millis(20))
                };
                match recv(&self.sock, budget, &mut buf) {
                    Some((n, src)) => self.on_datagram(&buf[..n], src),
                    None if stopping => break,
                    None => {}
                }
                pump(&mut self.layer, &self.sock);
            }
            self
        });
        Running::new(stop, handle)
    }

    fn contact(&self) -> String {
        format!("<sip:maskline@{}>", self.addr)
    }

    fn respond(
        &mut self,
        now: Instant,
        id: TransactionId,
        req: &Message<'_>,
        status: u16,
        reason: &str,
        tag: Option<&str>,
    ) {
        let resp = MessageBuilder::response_to(req, status, reason, tag)
            .unwrap()
            .build()
            .unwrap();
        self.layer
            .send_response(now, id, status, resp.into())
            .unwrap();
    }

    fn on_datagram(&mut self, raw: &[u8], src: SocketAddr) {
        if raw.iter().all(|b| b.is_ascii_whitespace()) {
            return;
        }
        let msg = match Message::parse(raw) {
            Ok(m) => m,
            Err(e) => return self.stats.anomalies.push(format!("parse: {e}")),
        };
        if let Err(e) = msg.validate() {
            return self.stats.anomalies.push(format!("validate: {e}"));
        }
        let now = Instant::now();
        if !msg.is_request() {
            let info = ResponseInfo::from_message(&msg).unwrap();
            let _ = self.layer.handle_response(now, &info);
            return;
        }
        let info = RequestInfo::from_message(&msg).unwrap();
        let dest = Destination {
            transport: Transport::Udp,
            addr: src,
        };
        match self.layer.handle_request(now, &info, dest) {
            RequestDisposition::New(id) => match msg.method().unwrap() {
                Method::Invite if msg.to().unwrap().tag().is_some() => self.reinvite(now, id, &msg),
                Method::Invite => self.invite(now, id, &msg, raw),
                Method::Bye => self.bye(now, id, &msg),
                m => {
                    self.stats.anomalies.push(format!("unexpected {m:?}"));
                    self.respond(now, id, &msg, 405, "Method Not Allowed", Some(&new_tag()));
                }
            },
            RequestDisposition::Cancel { id, invite } => {
                self.stats.cancels.push((id, invite));
                let pending = invite.and_then(|i| Some((i, self.ringing.remove(&i)?)));
                match pending {
                    Some((invite_id, (bytes, tag))) => {
                        // 200 to the CANCEL (RFC 3261 §9.2: its To tag is
                        // the one of our responses to the INVITE), then 487
                        // Request Terminated to the INVITE.
                        self.respond(now, id, &msg, 200, "OK", Some(&tag));
                        let invite = Message::parse(&bytes).unwrap();
                        self.respond(
                            now,
                            invite_id,
                            &invite,
                            487,
                            "Request Terminated",
                            Some(&tag),
                        );
                        self.stats.finals.push((invite_id, 487));
                    }
                    None => self.respond(
                        now,
                        id,
                        &msg,
                        481,
                        "Call/Transaction Does Not Exist",
                        Some(&new_tag()),
                    ),
                }
            }
            RequestDisposition::Absorbed(id) => self.stats.absorbed.push(id),
            RequestDisposition::Ack { .. } => {
                let acked = DialogId::for_incoming_request(&msg).ok().and_then(|d| {
                    let dlg = self.dialogs.get_mut(&d)?;
                    dlg.handle_request(&msg).ok()
                });
                match acked {
                    Some(()) => self.stats.dialog_acks.push(msg.cseq().unwrap().seq),
                    None => self.stats.anomalies.push("ACK outside a dialog".into()),
                }
            }
            other => self.stats.anomalies.push(format!("{other:?}")),
        }
    }

    fn invite(&mut self, now: Instant, id: TransactionId, invite: &Message<'_>, raw: &[u8]) {
        self.stats.invites.push(id);
        let tag = new_tag();
        self.respond(now, id, invite, 100, "Trying", None);
        if let Mode::Reject(status, reason) = self.mode {
            self.respond(now, id, invite, status, reason, Some(&tag));
            self.stats.finals.push((id, status));
            return;
        }
        let contact = self.contact();
        let ringing = MessageBuilder::response_to(invite, 180, "Ringing", Some(&tag))
            .unwrap()
            .header_kind(HeaderName::Contact, &contact)
            .build()
            .unwrap();
        self.layer
            .send_response(now, id, 180, ringing.into())
            .unwrap();
        if self.mode == Mode::Ring {
            self.ringing.insert(id, (raw.to_vec(), tag));
            return;
        }
        let mut dialog = Dialog::uas(invite, &tag).expect("SIPp's INVITE creates a dialog");
        self.answer_200(now, id, invite, Some(&tag));
        dialog.confirm();
        self.dialogs.insert(dialog.id().clone(), dialog);
    }

    fn answer_200(
        &mut self,
        now: Instant,
        id: TransactionId,
        req: &Message<'_>,
        tag: Option<&str>,
    ) {
        let answer = sdp_from(req.body(), self.addr.ip());
        let ok = MessageBuilder::response_to(req, 200, "OK", tag)
            .unwrap()
            .header_kind(HeaderName::Contact, &self.contact())
            .body("application/sdp", answer.as_bytes())
            .build()
            .unwrap();
        self.layer.send_response(now, id, 200, ok.into()).unwrap();
        self.stats.finals.push((id, 200));
    }

    /// A re-INVITE: the dialog checks its CSeq (RFC 3261 §12.2.2) before we
    /// answer 200; out of order or outside a dialog it gets 500 / 481.
    fn reinvite(&mut self, now: Instant, id: TransactionId, msg: &Message<'_>) {
        let checked = DialogId::for_incoming_request(msg)
            .ok()
            .and_then(|d| self.dialogs.get_mut(&d))
            .map(|dlg| dlg.handle_request(msg));
        match checked {
            Some(Ok(())) => {
                self.stats.reinvites.push(msg.cseq().unwrap().seq);
                self.answer_200(now, id, msg, None);
            }
            Some(Err(e)) => {
                self.stats.anomalies.push(format!("re-INVITE: {e}"));
                self.respond(now, id, msg, 500, "Server Internal Error", None);
            }
            None => {
                self.stats
                    .anomalies
                    .push("re-INVITE outside a dialog".into());
                self.respond(now, id, msg, 481, "Call/Transaction Does Not Exist", None);
            }
        }
    }

    fn bye(&mut self, now: Instant, id: TransactionId, msg: &Message<'_>) {
        let ended = DialogId::for_incoming_request(msg).ok().and_then(|d| {
            let dlg = self.dialogs.get_mut(&d)?;
            dlg.handle_request(msg).ok()?;
            Some(dlg.state())
        });
        if ended == Some(DialogState::Terminated) {
            self.stats.byes += 1;
            self.respond(now, id, msg, 200, "OK", None);
        } else {
            self.stats.anomalies.push(format!("BYE: {ended:?}"));
            self.respond(now, id, msg, 481, "Call/Transaction Does Not Exist", None);
        }
    }
}

/// Runs SIPp's scenario `tests/sipp/{file}` as a one-call UAC against a UAS
/// in `mode`; sipp must exit 0. Returns our UAS and SIPp's port.
fn run_scenario(file: &str, mode: Mode) -> (Uas, u16) {
    let scenario: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "sipp", file]
        .iter()
        .collect();
    assert!(scenario.exists(), "{}", scenario.display());
    let uas = Uas::new(mode);
    let target = uas.addr.to_string();
    let running = uas.spawn();
    let started = Instant::now();
    let port = free_port();
    let sipp_port = port.to_string();
    let mut sipp = Sipp::spawn(
        file.trim_end_matches(".xml"),
        &args(&[
            "-sf",
            scenario.to_str().unwrap(),
            &target,
            "-i",
            "127.0.0.1",
            "-p",
            &sipp_port,
            "-m",
            "1",
            "-timeout",
            "8",
            "-timeout_error",
        ]),
    );
    sipp.assert_success(started + SIPP_DEADLINE);
    let uas = running.finish();
    assert!(uas.stats.anomalies.is_empty(), "{:?}", uas.stats);
    (uas, port)
}

/// SIPp CANCELs a ringing INVITE: the CANCEL matches our INVITE server
/// transaction, gets 200, the INVITE gets 487, and SIPp's ACK of the 487
/// (same branch) is absorbed by that transaction, which is then Confirmed.
#[test]
fn sipp_cancels_a_ringing_invite() {
    let (uas, _) = run_scenario("cancel_uac.xml", Mode::Ring);
    let s = &uas.stats;
    assert_eq!(s.invites.len(), 1, "{s:?}");
    let invite = s.invites[0];
    assert_eq!(s.cancels.len(), 1, "{s:?}");
    let (cancel, matched) = s.cancels[0];
    assert_eq!(matched, Some(invite), "CANCEL matched the INVITE: {s:?}");
    assert_ne!(cancel, invite);
    assert_eq!(s.finals, vec![(invite, 487)], "{s:?}");
    assert_eq!(s.absorbed, vec![invite], "ACK of the 487 absorbed: {s:?}");
    assert!(s.dialog_acks.is_empty(), "{s:?}");
    assert!(uas.ringing.is_empty());
    assert_eq!(uas.layer.server_state(invite), Some(ServerState::Confirmed));
}

/// Our UAS answers 486 Busy Here; SIPp's ACK (same branch, our To tag) is
/// absorbed by the INVITE server transaction.
#[test]
fn sipp_acks_our_486() {
    let (uas, _) = run_scenario("busy_uac.xml", Mode::Reject(486, "Busy Here"));
    let s = &uas.stats;
    assert_eq!(s.invites.len(), 1, "{s:?}");
    let invite = s.invites[0];
    assert_eq!(s.finals, vec![(invite, 486)], "{s:?}");
    assert_eq!(s.absorbed, vec![invite], "ACK of the 486 absorbed: {s:?}");
    assert!(s.cancels.is_empty() && s.dialog_acks.is_empty(), "{s:?}");
    assert_eq!(uas.layer.server_state(invite), Some(ServerState::Confirmed));
}

/// A call, a re-INVITE in its dialog (CSeq 2, checked by the dialog; its
/// new Contact refreshes the remote target), both ACKed end to end, then
/// BYE (CSeq 3). The INVITE's two Record-Route values make the dialog's
/// route set, and SIPp fails the call unless our 200 copies them in order.
#[test]
fn sipp_reinvites_in_a_dialog() {
    let (uas, port) = run_scenario("reinvite_uac.xml", Mode::Answer);
    let s = &uas.stats;
    assert_eq!(s.invites.len(), 1, "{s:?}");
    assert_eq!(s.reinvites, vec![2], "{s:?}");
    assert_eq!(s.dialog_acks, vec![1, 2], "{s:?}");
    assert_eq!(s.byes, 1, "{s:?}");
    assert!(s.absorbed.is_empty() && s.cancels.is_empty(), "{s:?}");
    let dialog = uas.dialogs.values().next().unwrap();
    assert_eq!(dialog.remote_seq(), Some(3));
    assert_eq!(
        dialog.route_set(),
        [
            "<sip:rr2.maskline.invalid;lr>",
            "<sip:rr1.maskline.invalid;lr>"
        ]
    );
    assert_eq!(
        dialog.remote_target(),
        format!("sip:sipp-refreshed@127.0.0.1:{port}")
    );
    assert_eq!(dialog.state(), DialogState::Terminated);
}
