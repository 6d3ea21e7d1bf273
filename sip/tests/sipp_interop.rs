//! Interoperability with a real peer: SIPp (Debian package `sip-tester`)
//! talks over UDP on 127.0.0.1 to a small user agent written here with
//! blocking `std::net::UdpSocket`s. The UA drives this crate only: every
//! datagram goes through `Message::parse` + `validate()`, every transaction
//! through `TransactionLayer` (fed `Instant::now()`, its timers and
//! transmits honoured), call state through `Dialog`, and every message it
//! sends is built with `MessageBuilder` / the dialog / the `sdp` module.
//!
//! The tests fail (they do not skip) when `sipp` is not installed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sipp_support;

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use maskline_sip::dialog::{Dialog, DialogId, DialogState};
use maskline_sip::sdp::SessionDescription;
use maskline_sip::transaction::{
    Destination, RequestDisposition, RequestInfo, ResponseDisposition, ResponseInfo,
    TransactionLayer, Transport,
};
use maskline_sip::transaction::{TransactionEvent, TransactionId};
use maskline_sip::{
    new_branch, new_call_id, new_tag, HeaderName, Message, MessageBuilder, Method, ParseError, Uri,
};
use sipp_support::{
    args, bind, free_port, pump, recv, sdp_from, wait_budget, Running, Sipp, LOCALHOST,
    SIPP_DEADLINE,
};

/// Upper bound with packet loss: a few lost retransmissions in a row
/// (SIPp backs off 0.5, 1, 2, 4 s) may take a run past 10 s; it usually
/// takes 1–3 s.
const LOSSY_DEADLINE: Duration = Duration::from_secs(15);

// ----------------------------------------------------------------- UAS ----

/// What our UAS saw.
#[derive(Debug, Default)]
struct UasStats {
    invites: usize,
    acks: usize,
    byes: usize,
    /// Retransmissions absorbed by the transaction layer.
    absorbed: usize,
    /// Dialogs confirmed by a 2xx, and those ended by a BYE.
    confirmed: Vec<DialogId>,
    ended: Vec<DialogId>,
    /// ACKs that matched a confirmed dialog.
    acked: Vec<DialogId>,
    /// Requests rejected before the transaction layer: the typed error and
    /// the status we answered (None: too broken to answer).
    rejected: Vec<(ParseError, Option<u16>)>,
    /// Datagrams we could not make sense of at all, with the reason.
    anomalies: Vec<String>,
}

/// A UAS that answers every INVITE with 100, 180 and 200 + SDP, takes the
/// ACK and answers BYE with 200.
struct Uas {
    sock: UdpSocket,
    addr: SocketAddr,
    layer: TransactionLayer,
    dialogs: HashMap<DialogId, Dialog>,
    stats: UasStats,
    /// Gets the bytes of the first INVITE received.
    first_invite: Option<mpsc::Sender<Vec<u8>>>,
}

impl Uas {
    fn new() -> Uas {
        let sock = bind();
        let addr = sock.local_addr().unwrap();
        Uas {
            sock,
            addr,
            layer: TransactionLayer::new(Default::default()),
            dialogs: HashMap::new(),
            stats: UasStats::default(),
            first_invite: None,
        }
    }

    /// Runs in a thread until [`Running::finish`] (or a drop on panic).
    fn spawn(mut self) -> Running<Uas> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = thread::spawn(move || {
            let stop = flag;
            let mut buf = vec![0u8; 65_535];
            while !stop.load(Ordering::Relaxed) {
                let budget = wait_budget(&self.layer, Duration::from_millis(20));
                if let Some((n, src)) = recv(&self.sock, budget, &mut buf) {
                    self.on_datagram(&buf[..n], src);
                }
                pump(&mut self.layer, &self.sock);
            }
            self
        });
        Running::new(stop, handle)
    }

    fn send(&self, bytes: &[u8], to: SocketAddr) {
        self.sock.send_to(bytes, to).unwrap();
    }

    fn on_datagram(&mut self, raw: &[u8], src: SocketAddr) {
        if raw.iter().all(|b| b.is_ascii_whitespace()) {
            return; // keep-alive
        }
        let msg = match Message::parse(raw) {
            Ok(m) => m,
            Err(e) => {
                // Only a request broken by its Content-Length can still be
                // answered (RFC 3261 §18.3); anything else is dropped.
                let answered = match MessageBuilder::error_response_to_datagram(raw, &e) {
                    Ok(resp) => {
                        self.send(&resp, src);
                        Some(e.status_code())
                    }
                    Err(_) => None,
                };
                self.stats.rejected.push((e, answered));
                return;
            }
        };
        if let Err(e) = msg.validate() {
            if msg.is_request() {
                let answered = match MessageBuilder::error_response(&msg, &e) {
                    Ok(resp) => {
                        self.send(&resp, src);
                        Some(e.status_code())
                    }
                    Err(_) => None,
                };
                self.stats.rejected.push((e, answered));
            } else {
                self.stats.anomalies.push(format!("invalid response: {e}"));
            }
            return;
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
            RequestDisposition::New(id) => {
                let method = msg.method().unwrap();
                match method {
                    Method::Invite => {
                        self.stats.invites += 1;
                        if let Some(tx) = self.first_invite.take() {
                            let _ = tx.send(raw.to_vec());
                        }
                        self.answer_invite(now, id, &msg);
                    }
                    Method::Bye => {
                        self.stats.byes += 1;
                        let found = DialogId::for_incoming_request(&msg).ok().and_then(|d| {
                            let dlg = self.dialogs.get_mut(&d)?;
                            dlg.handle_request(&msg).ok()?;
                            Some((d, dlg.state()))
                        });
                        let status = match found {
                            Some((d, state)) => {
                                assert_eq!(state, DialogState::Terminated);
                                self.stats.ended.push(d);
                                (200, "OK")
                            }
                            None => (481, "Call/Transaction Does Not Exist"),
                        };
                        let resp = MessageBuilder::response_to(&msg, status.0, status.1, None)
                            .unwrap()
                            .build()
                            .unwrap();
                        self.layer
                            .send_response(now, id, status.0, resp.into())
                            .unwrap();
                    }
                    _ => {
                        let resp = MessageBuilder::response_to(
                            &msg,
                            405,
                            "Method Not Allowed",
                            Some(&new_tag()),
                        )
                        .unwrap()
                        .header_kind(HeaderName::Allow, "INVITE, ACK, BYE")
                        .build()
                        .unwrap();
                        self.layer.send_response(now, id, 405, resp.into()).unwrap();
                    }
                }
            }
            RequestDisposition::Ack { .. } => {
                self.stats.acks += 1;
                match DialogId::for_incoming_request(&msg) {
                    Ok(d) => match self.dialogs.get_mut(&d).map(|dlg| dlg.handle_request(&msg)) {
                        Some(Ok(())) => self.stats.acked.push(d),
                        other => self
                            .stats
                            .anomalies
                            .push(format!("ACK outside a dialog: {d:?}: {other:?}")),
                    },
                    Err(e) => self.stats.anomalies.push(format!("ACK: {e}")),
                }
            }
            RequestDisposition::Absorbed(_) => self.stats.absorbed += 1,
            other => self.stats.anomalies.push(format!("{other:?}")),
        }
    }

    fn answer_invite(&mut self, now: Instant, id: TransactionId, invite: &Message<'_>) {
        let tag = new_tag();
        let mut dialog = Dialog::uas(invite, &tag).expect("SIPp's INVITE creates a dialog");
        let contact = format!("<sip:maskline@{}>", self.addr);
        let trying = MessageBuilder::response_to(invite, 100, "Trying", None)
            .unwrap()
            .build()
            .unwrap();
        self.layer
            .send_response(now, id, 100, trying.into())
            .unwrap();
        let ringing = MessageBuilder::response_to(invite, 180, "Ringing", Some(&tag))
            .unwrap()
            .header_kind(HeaderName::Contact, &contact)
            .build()
            .unwrap();
        self.layer
            .send_response(now, id, 180, ringing.into())
            .unwrap();
        let answer = sdp_from(invite.body(), self.addr.ip());
        let ok = MessageBuilder::response_to(invite, 200, "OK", Some(&tag))
            .unwrap()
            .header_kind(HeaderName::Contact, &contact)
            .body("application/sdp", answer.as_bytes())
            .build()
            .unwrap();
        self.layer.send_response(now, id, 200, ok.into()).unwrap();
        dialog.confirm();
        self.stats.confirmed.push(dialog.id().clone());
        self.dialogs.insert(dialog.id().clone(), dialog);
    }
}

// --------------------------------------------------------------- tests ----

/// SIPp's built-in `uac` places `calls` calls to our UAS (10 per second);
/// sipp must exit 0. Returns our UAS after checking that every call was one
/// INVITE, ACKed and ended by BYE in the dialog its 200 confirmed.
fn sipp_uac_calls(name: &str, calls: usize, extra: &[&str], bound: Duration) -> Uas {
    let uas = Uas::new();
    let target = uas.addr.to_string();
    let running = uas.spawn();
    let started = Instant::now();
    let sipp_port = free_port().to_string();
    let calls_arg = calls.to_string();
    let mut list = vec![
        "-sn",
        "uac",
        &target,
        "-i",
        "127.0.0.1",
        "-p",
        &sipp_port,
        "-m",
        &calls_arg,
        "-r",
        "10",
        "-rp",
        "1000",
        "-timeout",
        "20",
        "-timeout_error",
    ];
    list.extend_from_slice(extra);
    let mut sipp = Sipp::spawn(name, &args(&list));
    sipp.assert_success(started + bound);
    let uas = running.finish();
    let s = &uas.stats;
    assert!(s.anomalies.is_empty(), "{:?}", s.anomalies);
    assert!(s.rejected.is_empty(), "{:?}", s.rejected);
    assert_eq!(s.invites, calls, "{s:?}");
    let sorted = |l: &[DialogId]| {
        let mut l = l.to_vec();
        l.sort_by(|a, b| a.call_id.cmp(&b.call_id));
        l.dedup();
        l
    };
    let confirmed = sorted(&s.confirmed);
    assert_eq!(confirmed.len(), calls, "{calls} distinct dialogs: {s:?}");
    for (what, list) in [("ACK", &s.acked), ("BYE", &s.ended)] {
        assert!(
            list.iter().all(|d| confirmed.contains(d)),
            "every {what} must be in a dialog its 200 confirmed: {s:?}"
        );
    }
    uas
}

/// SIPp places 3 calls (its built-in `uac` scenario) to our UAS.
#[test]
fn sipp_uac_calls_our_uas() {
    let uas = sipp_uac_calls("uac", 3, &[], SIPP_DEADLINE);
    let s = &uas.stats;
    // Nothing is lost on loopback: exactly one ACK and one BYE per call,
    // each in its dialog, and every dialog ended.
    assert_eq!(
        (s.invites, s.acks, s.byes, s.absorbed),
        (3, 3, 3, 0),
        "{s:?}"
    );
    let mut confirmed = s.confirmed.clone();
    confirmed.sort_by(|a, b| a.call_id.cmp(&b.call_id));
    for list in [&s.acked, &s.ended] {
        let mut l = list.clone();
        l.sort_by(|a, b| a.call_id.cmp(&b.call_id));
        assert_eq!(l, confirmed, "{s:?}");
    }
    assert!(uas
        .dialogs
        .values()
        .all(|d| d.state() == DialogState::Terminated));
}

/// Ten calls while SIPp drops 5 % of the packets it sends and receives
/// (`-lost 5`): SIPp only succeeds if our retransmissions work (the 2xx
/// until its ACK, the last response to a retransmitted INVITE or BYE).
/// Our side's counts are not exact under loss: a lost ACK is not re-sent
/// once SIPp has sent its BYE, and SIPp's built-in `uac` takes a
/// retransmitted INVITE 200 for the 200 to its BYE, so a lost BYE may never
/// be retried.
#[test]
fn sipp_uac_calls_our_uas_with_packet_loss() {
    let uas = sipp_uac_calls("uac-lossy", 10, &["-lost", "5"], LOSSY_DEADLINE);
    let s = &uas.stats;
    eprintln!(
        "lossy run: invites {} acks {} byes {} absorbed retransmissions {}",
        s.invites, s.acks, s.byes, s.absorbed
    );
}

/// Our UAC places one call to SIPp's built-in `uas` scenario.
#[test]
fn our_uac_calls_sipp_uas() {
    let sipp_port = free_port();
    let started = Instant::now();
    let deadline = started + SIPP_DEADLINE;
    let mut sipp = Sipp::spawn(
        "uas",
        &args(&[
            "-sn",
            "uas",
            "-i",
            "127.0.0.1",
            "-p",
            &sipp_port.to_string(),
            "-m",
            "1",
            "-timeout",
            "20",
            "-timeout_error",
        ]),
    );
    let peer = SocketAddr::new(LOCALHOST, sipp_port);
    let sock = bind();
    let local = sock.local_addr().unwrap();
    let sent_by = local.to_string();
    let dest = Destination {
        transport: Transport::Udp,
        addr: peer,
    };
    let mut layer = TransactionLayer::new(Default::default());

    // The INVITE, with an SDP offer written by our sdp module.
    let offer = sdp_from(
        b"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n\
          m=audio 1 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
          a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n",
        local.ip(),
    );
    let from_tag = new_tag();
    let call_id = new_call_id();
    let invite_bytes = MessageBuilder::request(Method::Invite, &format!("sip:service@{peer}"))
        .via("UDP", &sent_by, &new_branch())
        .max_forwards(70)
        .header_kind(
            HeaderName::From,
            &format!("<sip:maskline@{local}>;tag={from_tag}"),
        )
        .header_kind(HeaderName::To, &format!("<sip:service@{peer}>"))
        .header_kind(HeaderName::CallId, &call_id)
        .cseq(1, Method::Invite)
        .header_kind(HeaderName::Contact, &format!("<sip:maskline@{local}>"))
        .body("application/sdp", offer.as_bytes())
        .build()
        .unwrap();
    let invite = Message::parse(&invite_bytes).unwrap();
    invite.validate().unwrap();
    let invite_tx = layer
        .send_request(
            Instant::now(),
            &RequestInfo::from_message(&invite).unwrap(),
            invite_bytes.clone().into(),
            dest,
        )
        .unwrap();

    let mut dialog: Option<Dialog> = None;
    let mut statuses = Vec::new();
    let mut acks_sent = 0;
    let mut bye_tx = None;
    let mut bye_ok = false;
    let mut buf = vec![0u8; 65_535];
    while !bye_ok {
        assert!(
            Instant::now() < deadline,
            "call not finished in time: responses {statuses:?}\n{}",
            sipp.logs()
        );
        pump(&mut layer, &sock);
        if let Some(ev) = layer.poll_event() {
            assert!(
                !matches!(
                    ev,
                    TransactionEvent::Timeout(_) | TransactionEvent::TransportError(_)
                ),
                "{ev:?}; responses so far {statuses:?}\n{}",
                sipp.logs()
            );
        }
        let budget = wait_budget(&layer, Duration::from_millis(20));
        let Some((n, src)) = recv(&sock, budget, &mut buf) else {
            continue;
        };
        assert_eq!(src, peer);
        let resp = Message::parse(&buf[..n]).expect("SIPp's response parses");
        resp.validate().expect("SIPp's response validates");
        let status = resp.status().expect("SIPp sends only responses here");
        let disposition =
            layer.handle_response(Instant::now(), &ResponseInfo::from_message(&resp).unwrap());
        let ResponseDisposition::Deliver(tx) = disposition else {
            continue; // absorbed retransmission
        };
        statuses.push(status);
        if tx == invite_tx {
            if status == 100 {
                continue;
            }
            match dialog.as_mut() {
                Some(d) => d.handle_response(&resp).unwrap(),
                None => dialog = Some(Dialog::uac(&invite, &resp).unwrap()),
            }
            let d = dialog.as_mut().unwrap();
            if status < 200 {
                assert_eq!(d.state(), DialogState::Early);
                continue;
            }
            assert_eq!(status, 200);
            assert_eq!(d.state(), DialogState::Confirmed);
            let answer = SessionDescription::parse(resp.body()).expect("SIPp's SDP answer parses");
            assert_eq!(answer.media.len(), 1);
            // The remote target is SIPp's Contact: ACK and BYE go there.
            let target = Uri::parse(d.remote_target()).unwrap();
            let target =
                SocketAddr::new(target.host_str().parse().unwrap(), target.port().unwrap());
            assert_eq!(target, peer);
            // ACK for every 2xx (retransmissions included), end to end.
            let ack = d.ack("UDP", &sent_by).unwrap().build().unwrap();
            let parsed = Message::parse(&ack).unwrap();
            parsed.validate().unwrap();
            assert_eq!(parsed.cseq().unwrap().seq, 1);
            sock.send_to(&ack, target).unwrap();
            acks_sent += 1;
            if bye_tx.is_none() {
                let bye: std::sync::Arc<[u8]> = d
                    .new_request(Method::Bye, "UDP", &sent_by)
                    .unwrap()
                    .build()
                    .unwrap()
                    .into();
                let parsed = Message::parse(&bye).unwrap();
                parsed.validate().unwrap();
                assert_eq!(parsed.cseq().unwrap().seq, 2);
                let info = RequestInfo::from_message(&parsed).unwrap();
                let dest = Destination {
                    transport: Transport::Udp,
                    addr: target,
                };
                bye_tx = Some(
                    layer
                        .send_request(Instant::now(), &info, bye.clone(), dest)
                        .unwrap(),
                );
            }
        } else if Some(tx) == bye_tx {
            assert_eq!(status, 200, "BYE answered {status}");
            let d = dialog.as_mut().unwrap();
            d.handle_response(&resp).unwrap();
            assert_eq!(d.state(), DialogState::Terminated);
            bye_ok = true;
        }
    }
    assert!(acks_sent >= 1);
    assert!(statuses.contains(&180), "{statuses:?}");
    // SIPp keeps the call 4 s in its timewait, then exits.
    sipp.assert_success(deadline);
}

/// One mutant of SIPp's INVITE: what was broken, the bytes, the typed
/// error our side must record, and the (status, reason) it must answer, or
/// `None` when the request is too broken to answer.
type Case = (
    &'static str,
    String,
    ParseError,
    Option<(u16, &'static str)>,
);

/// SIPp's own INVITE, mutated, sent to our UAS during a real call: each
/// answerable breakage gets the status and typed reason phrase of its
/// `ParseError`; the call itself still completes.
#[test]
fn mutated_sipp_invites_get_typed_errors() {
    let mut uas = Uas::new();
    let (tx, rx) = mpsc::channel();
    uas.first_invite = Some(tx);
    let target = uas.addr;
    let running = uas.spawn();
    let started = Instant::now();
    let sipp_port = free_port().to_string();
    // -d: SIPp holds the call 1 s between ACK and BYE, while we attack.
    let mut sipp = Sipp::spawn(
        "hostile",
        &args(&[
            "-sn",
            "uac",
            &target.to_string(),
            "-i",
            "127.0.0.1",
            "-p",
            &sipp_port,
            "-m",
            "1",
            "-d",
            "1000",
            "-timeout",
            "20",
            "-timeout_error",
        ]),
    );
    let real = rx
        .recv_timeout(Duration::from_secs(5))
        .unwrap_or_else(|_| panic!("no INVITE from sipp\n{}", sipp.logs()));
    let real = String::from_utf8(real).unwrap();
    let cl_line = real
        .lines()
        .find(|l| l.starts_with("Content-Length:"))
        .unwrap()
        .to_owned();
    let body_len: usize = cl_line["Content-Length:".len()..].trim().parse().unwrap();
    let call_id_line = real
        .lines()
        .find(|l| l.starts_with("Call-ID:"))
        .unwrap()
        .to_owned();

    let replace = |from: &str, to: &str| {
        assert!(
            real.contains(from),
            "{from:?} not in SIPp's INVITE:\n{real}"
        );
        real.replacen(from, to, 1)
    };
    let cases: Vec<Case> = vec![
        (
            "CSeq method",
            replace("CSeq: 1 INVITE", "CSeq: 1 BYE"),
            ParseError::CSeqMethodMismatch,
            Some((400, "Bad Request - CSeq Method Mismatch")),
        ),
        (
            "Max-Forwards",
            replace("Max-Forwards: 70", "Max-Forwards: seventy"),
            ParseError::InvalidMaxForwards,
            Some((400, "Bad Request - Malformed Max-Forwards")),
        ),
        (
            "Content-Type",
            replace("Content-Type: application/sdp", "Content-Type: application"),
            ParseError::InvalidHeader("Content-Type"),
            Some((400, "Bad Request - Malformed Content-Type")),
        ),
        (
            "Request-URI scheme",
            replace("INVITE sip:", "INVITE xmpp:"),
            ParseError::UnsupportedUriScheme,
            Some((416, "Unsupported URI Scheme")),
        ),
        (
            "missing Call-ID",
            replace(&format!("{call_id_line}\r\n"), ""),
            ParseError::MissingHeader("Call-ID"),
            None,
        ),
        (
            "Content-Length past the datagram",
            replace(&cl_line, &format!("Content-Length: {}", body_len + 100)),
            ParseError::BodyTruncated,
            Some((400, "Bad Request - Body Shorter Than Content-Length")),
        ),
        (
            "Content-Length not a number",
            replace(&cl_line, "Content-Length: many"),
            ParseError::InvalidContentLength,
            Some((400, "Bad Request - Malformed Content-Length")),
        ),
        (
            "two Content-Length",
            replace(&cl_line, &format!("Content-Length: 0\r\n{cl_line}")),
            ParseError::DuplicateHeader("Content-Length"),
            Some((400, "Bad Request - Duplicate Content-Length")),
        ),
    ];

    let attacker = bind();
    let mut buf = vec![0u8; 65_535];
    for (what, bytes, _, expected) in &cases {
        attacker.send_to(bytes.as_bytes(), target).unwrap();
        let wait = if expected.is_some() { 2000 } else { 300 };
        let got = recv(&attacker, Duration::from_millis(wait), &mut buf);
        match (expected, got) {
            (Some((status, reason)), Some((n, src))) => {
                assert_eq!(src, target);
                let resp = Message::parse(&buf[..n]).unwrap();
                resp.validate().unwrap();
                let line = resp.status_line().unwrap();
                assert_eq!((line.code, line.reason), (*status, *reason), "{what}");
                let sent = Message::parse(real.as_bytes()).unwrap();
                assert_eq!(resp.call_id().unwrap(), sent.call_id().unwrap(), "{what}");
                assert_eq!(
                    resp.top_via().unwrap().branch(),
                    sent.top_via().unwrap().branch(),
                    "{what}"
                );
                assert!(resp.to().unwrap().tag().is_some(), "{what}: To tag");
            }
            (None, None) => {}
            (e, g) => panic!(
                "{what}: expected {e:?}, got {:?}",
                g.map(|(n, _)| String::from_utf8_lossy(&buf[..n]).into_owned())
            ),
        }
    }

    sipp.assert_success(started + SIPP_DEADLINE);
    let uas = running.finish();
    let s = &uas.stats;
    assert!(s.anomalies.is_empty(), "{:?}", s.anomalies);
    assert_eq!((s.invites, s.acks, s.byes), (1, 1, 1), "{s:?}");
    let expected: Vec<(ParseError, Option<u16>)> = cases
        .iter()
        .map(|(_, _, e, r)| (*e, r.map(|(status, _)| status)))
        .collect();
    assert_eq!(s.rejected, expected);
}
