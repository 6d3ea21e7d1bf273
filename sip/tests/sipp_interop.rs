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

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use maskline_sip::dialog::{Dialog, DialogId, DialogState};
use maskline_sip::sdp::SessionDescription;
use maskline_sip::transaction::{
    Destination, RequestDisposition, RequestInfo, ResponseInfo, TransactionLayer, Transport,
};
use maskline_sip::{new_tag, HeaderName, Message, MessageBuilder, Method, ParseError};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Upper bound for one SIPp run.
const SIPP_DEADLINE: Duration = Duration::from_secs(10);
/// Media port our side writes into its SDP (no RTP flows in these tests).
const OUR_MEDIA_PORT: u16 = 40_000;

// ---------------------------------------------------------------- SIPp ----

/// A running `sipp`, killed (and reaped) when dropped, so that a failing
/// assertion never leaves it behind.
struct Sipp {
    child: Option<Child>,
    dir: PathBuf,
}

impl Sipp {
    /// Starts `sipp` with `args` in a scratch directory (SIPp writes its
    /// logs next to where it runs).
    fn spawn(name: &str, args: &[String]) -> Sipp {
        let dir = std::env::temp_dir().join(format!(
            "maskline-sipp-{name}-{}-{}",
            std::process::id(),
            new_tag()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let out = std::fs::File::create(dir.join("stdout.log")).unwrap();
        let err = std::fs::File::create(dir.join("stderr.log")).unwrap();
        let child = Command::new("sipp")
            .args(args)
            .args(["-nostdin", "-trace_err", "-error_file"])
            .arg(dir.join("errors.log"))
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) if e.kind() == ErrorKind::NotFound => panic!(
                "`sipp` not found in PATH: install SIPp (Debian/Ubuntu: `apt-get install sip-tester`); \
                 these interop tests do not skip"
            ),
            Err(e) => panic!("cannot start sipp: {e}"),
        };
        Sipp {
            child: Some(child),
            dir,
        }
    }

    /// Exit status if SIPp has ended.
    fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().unwrap())
    }

    /// Waits for SIPp to end, at most until `deadline`; panics (killing it
    /// through `Drop`) when it does not.
    fn wait_until(&mut self, deadline: Instant) -> ExitStatus {
        loop {
            if let Some(s) = self.try_wait() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "sipp still running at the deadline\n{}",
                self.logs()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIPp's stderr and error log, for failure messages.
    fn logs(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
        format!(
            "--- sipp stderr ---\n{}\n--- sipp errors ---\n{}",
            read("stderr.log"),
            read("errors.log")
        )
    }

    /// Asserts a clean exit (0: every call succeeded).
    fn assert_success(&mut self, deadline: Instant) {
        let status = self.wait_until(deadline);
        assert_eq!(
            status.code(),
            Some(0),
            "sipp failed ({status})\n{}",
            self.logs()
        );
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if c.try_wait().ok().flatten().is_none() {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
        if !thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A UDP port on 127.0.0.1 that was free a moment ago (for SIPp's `-p`).
fn free_port() -> u16 {
    UdpSocket::bind((LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn bind() -> UdpSocket {
    UdpSocket::bind((LOCALHOST, 0)).unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Receives one datagram until `timeout`, or `None`.
fn recv(sock: &UdpSocket, timeout: Duration, buf: &mut [u8]) -> Option<(usize, SocketAddr)> {
    sock.set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
        .unwrap();
    match sock.recv_from(buf) {
        Ok(r) => Some(r),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
        Err(e) => panic!("recv_from: {e}"),
    }
}

/// How long to block in `recv` so that the layer's next timer is not missed.
fn wait_budget(layer: &TransactionLayer, cap: Duration) -> Duration {
    match layer.poll_timeout() {
        Some(at) => at.saturating_duration_since(Instant::now()).min(cap),
        None => cap,
    }
}

/// Runs due timers and sends everything the layer queued.
fn pump(layer: &mut TransactionLayer, sock: &UdpSocket) {
    let now = Instant::now();
    if layer.poll_timeout().is_some_and(|at| at <= now) {
        layer.handle_timeout(now);
    }
    while let Some(t) = layer.poll_transmit() {
        sock.send_to(&t.payload, t.destination.addr).unwrap();
    }
}

/// Our SDP answer (or offer) derived from `offer`: connection and origin
/// rewritten to our address, media port to ours.
fn sdp_from(offer: &[u8], addr: IpAddr) -> String {
    let mut sdp = SessionDescription::parse(offer).expect("SIPp's SDP parses");
    sdp.set_connection_address(addr);
    sdp.set_origin("maskline", addr).unwrap();
    for m in &mut sdp.media {
        m.set_port(OUR_MEDIA_PORT);
    }
    sdp.to_string()
}

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

    /// Runs in a thread until `stop` is set; returns the UAS for inspection.
    fn spawn(mut self, stop: Arc<AtomicBool>) -> thread::JoinHandle<Uas> {
        thread::spawn(move || {
            let mut buf = vec![0u8; 65_535];
            while !stop.load(Ordering::Relaxed) {
                let budget = wait_budget(&self.layer, Duration::from_millis(20));
                if let Some((n, src)) = recv(&self.sock, budget, &mut buf) {
                    self.on_datagram(&buf[..n], src);
                }
                pump(&mut self.layer, &self.sock);
            }
            self
        })
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
                // No message to build an answer from.
                self.stats.rejected.push((e, None));
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

    fn answer_invite(
        &mut self,
        now: Instant,
        id: maskline_sip::transaction::TransactionId,
        invite: &Message<'_>,
    ) {
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

/// SIPp places 3 calls (its built-in `uac` scenario) to our UAS.
#[test]
fn sipp_uac_calls_our_uas() {
    let uas = Uas::new();
    let target = uas.addr.to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let handle = uas.spawn(stop.clone());
    let started = Instant::now();
    let sipp_port = free_port().to_string();
    let mut sipp = Sipp::spawn(
        "uac",
        &args(&[
            "-sn",
            "uac",
            &target,
            "-i",
            "127.0.0.1",
            "-p",
            &sipp_port,
            "-m",
            "3",
            "-r",
            "10",
            "-rp",
            "1000",
            "-timeout",
            "20",
            "-timeout_error",
        ]),
    );
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sipp.assert_success(started + SIPP_DEADLINE);
    }));
    stop.store(true, Ordering::Relaxed);
    let uas = handle.join().unwrap();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    let s = &uas.stats;
    assert!(s.anomalies.is_empty(), "{:?}", s.anomalies);
    assert!(s.rejected.is_empty(), "{:?}", s.rejected);
    assert_eq!((s.invites, s.acks, s.byes), (3, 3, 3), "{s:?}");
    let mut confirmed = s.confirmed.clone();
    for list in [&s.acked, &s.ended] {
        let mut l = list.clone();
        l.sort_by(|a, b| a.call_id.cmp(&b.call_id));
        confirmed.sort_by(|a, b| a.call_id.cmp(&b.call_id));
        assert_eq!(l, confirmed, "ACK/BYE dialogs must be the confirmed ones");
    }
    let call_ids: std::collections::HashSet<_> = confirmed.iter().map(|d| &d.call_id).collect();
    assert_eq!(call_ids.len(), 3, "three distinct calls");
    assert!(uas
        .dialogs
        .values()
        .all(|d| d.state() == DialogState::Terminated));
}
