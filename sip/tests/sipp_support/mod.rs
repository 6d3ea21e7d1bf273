//! Shared by the SIPp interop tests (`sipp_interop.rs`, `sipp_scenarios.rs`):
//! the `sipp` process guard and the blocking-socket helpers of the test UA.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use maskline_sip::new_tag;
use maskline_sip::sdp::SessionDescription;
use maskline_sip::transaction::TransactionLayer;

pub const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Upper bound for one SIPp run.
pub const SIPP_DEADLINE: Duration = Duration::from_secs(10);

/// Media port our side writes into its SDP (no RTP flows in these tests).
pub const OUR_MEDIA_PORT: u16 = 40_000;

// ---------------------------------------------------------------- SIPp ----

/// A running `sipp`, killed (and reaped) when dropped, so that a failing
/// assertion never leaves it behind.
pub struct Sipp {
    child: Option<Child>,
    dir: PathBuf,
}

impl Sipp {
    /// Starts `sipp` with `args` in a scratch directory (SIPp writes its
    /// logs next to where it runs).
    pub fn spawn(name: &str, args: &[String]) -> Sipp {
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
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().unwrap())
    }

    /// Waits for SIPp to end, at most until `deadline`; panics (killing it
    /// through `Drop`) when it does not.
    pub fn wait_until(&mut self, deadline: Instant) -> ExitStatus {
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
    pub fn logs(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
        format!(
            "--- sipp stderr ---\n{}\n--- sipp errors ---\n{}",
            read("stderr.log"),
            read("errors.log")
        )
    }

    /// Asserts a clean exit (0: every call succeeded).
    pub fn assert_success(&mut self, deadline: Instant) {
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
pub fn free_port() -> u16 {
    UdpSocket::bind((LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn bind() -> UdpSocket {
    UdpSocket::bind((LOCALHOST, 0)).unwrap()
}

pub fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Receives one datagram until `timeout`, or `None`.
pub fn recv(sock: &UdpSocket, timeout: Duration, buf: &mut [u8]) -> Option<(usize, SocketAddr)> {
    sock.set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
        .unwrap();
    match sock.recv_from(buf) {
        Ok(r) => Some(r),
        // ConnectionRefused: an ICMP port-unreachable from a send before
        // SIPp was listening; the transaction layer retransmits.
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::ConnectionRefused
            ) =>
        {
            None
        }
        Err(e) => panic!("recv_from: {e}"),
    }
}

/// How long to block in `recv` so that the layer's next timer is not missed.
pub fn wait_budget(layer: &TransactionLayer, cap: Duration) -> Duration {
    match layer.poll_timeout() {
        Some(at) => at.saturating_duration_since(Instant::now()).min(cap),
        None => cap,
    }
}

/// Runs due timers and sends everything the layer queued.
pub fn pump(layer: &mut TransactionLayer, sock: &UdpSocket) {
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
pub fn sdp_from(offer: &[u8], addr: IpAddr) -> String {
    let mut sdp = SessionDescription::parse(offer).expect("SIPp's SDP parses");
    sdp.set_connection_address(addr);
    sdp.set_origin("maskline", addr).unwrap();
    for m in &mut sdp.media {
        m.set_port(OUR_MEDIA_PORT);
    }
    sdp.to_string()
}

/// A test UA running in its own thread; stopped when finished or dropped (so a
/// failing test never leaves the thread reading the socket).
pub struct Running<T> {
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<T>>,
}

impl<T> Running<T> {
    /// Wraps a thread that runs until `stop` is set.
    pub fn new(stop: Arc<AtomicBool>, handle: thread::JoinHandle<T>) -> Self {
        Self {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops the thread and returns what it ran.
    pub fn finish(mut self) -> T {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .take()
            .unwrap()
            .join()
            .expect("UA thread panicked")
    }
}

impl<T> Drop for Running<T> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
