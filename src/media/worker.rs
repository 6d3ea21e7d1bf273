//! The forwarding workers: a fixed number of threads, each owning an epoll set and
//! the state of the sessions assigned to it. Nothing on the forwarding path takes a
//! lock or allocates: the session table changes only through [`Command`]s sent over
//! a channel (the worker is woken by an eventfd), packets are read and written in
//! batches (`recvmmsg`/`sendmmsg`, see [`super::sys`]) and counters are
//! worker-local, flushed to shared atomics once per wake-up and to the `metrics`
//! recorder once per second. A busy worker polls every `coalesce` (default 1 ms,
//! [`super::DEFAULT_COALESCE`]) rather than being woken per packet.
//!
//! Per leg the worker applies symmetric-RTP latching: a packet is accepted from the
//! latched address; or from exactly the address the leg's SDP names (which
//! re-latches); or, before the first latch, from any port of the SDP's IP (NAT
//! rewrites ports), or from any address when the SDP names a private address (the
//! leg is behind NAT). After a re-INVITE moves a leg, the address it left may not
//! latch again unless the new SDP names it exactly. Everything else is dropped
//! and counted. Media goes to the latched address, else to the SDP's.
//!
//! A session in IVR mode (see [`super::ivr`]) terminates leg A here: its packets
//! are read for DTMF and not forwarded, and prompts are sent to it on schedule;
//! while any prompt plays the worker polls every `coalesce`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::counters::{Counters, Local};
use super::ivr::Ivr;
use super::ports::{LegSockets, PortPool, QUIET};
use super::prompt::{Prompt, G711};
use super::rewrite::Target;
use super::rtcp;
use super::sys::{Batch, Epoll, RawAddr, Waker, BATCH};
use super::{Leg, MediaEvent};

/// A change to a worker's session table.
#[derive(Debug)]
pub(super) enum Command {
    /// A new session with its four sockets.
    Add(Box<NewSession>),
    /// Leg `leg` has a new SDP target.
    Update { id: u64, leg: Leg, target: Target },
    /// The session ended: close its sockets and free its ports.
    Remove { id: u64 },
    /// The relay answers leg A itself (IVR mode): terminate its media.
    Ivr {
        id: u64,
        law: G711,
        te_pt: Option<u8>,
    },
    /// Play a prompt to leg A (`None`: stop playing).
    Play {
        id: u64,
        prompt: Option<Arc<Prompt>>,
    },
    /// Leave IVR mode: forward between the legs from now on.
    Bridge { id: u64 },
}

/// What a worker needs to take a session over.
#[derive(Debug)]
pub(super) struct NewSession {
    pub id: u64,
    pub legs: [LegSockets; 2],
    pub events: mpsc::Sender<MediaEvent>,
}

const RTP: usize = 0;
const RTCP: usize = 1;
const WAKER_TOKEN: u64 = u64::MAX;
/// Timeout checks and metrics flushes run at most this often.
const TICK: Duration = Duration::from_millis(100);
const METRICS_EVERY: Duration = Duration::from_secs(1);
/// Ready sockets reported per `epoll_wait`.
const EVENTS: usize = 1024;

#[derive(Debug)]
struct LegState {
    sock: LegSockets,
    target: Target,
    /// Learnt source of RTP, RTCP.
    latched: [Option<SocketAddr>; 2],
    /// Sources latched before the leg's SDP moved: they may not latch again
    /// except by being exactly what the new SDP names.
    retired: [Option<SocketAddr>; 2],
    /// Where RTP, RTCP for this leg go (latched, else from SDP).
    dest: [Option<RawAddr>; 2],
}

impl LegState {
    fn fd(&self, kind: usize) -> RawFd {
        if kind == RTP {
            self.sock.rtp.as_raw_fd()
        } else {
            self.sock.rtcp.as_raw_fd()
        }
    }

    fn refresh_dest(&mut self) {
        let rtp = self.latched[RTP].or(self.target.rtp());
        // Behind NAT (RTP latched to another IP than the SDP's), RTCP goes to the
        // NAT's RTP port + 1 until RTCP itself is latched: the SDP's is unreachable.
        let natted = self.latched[RTP]
            .filter(|l| Some(l.ip()) != self.target.ip)
            .map(|l| SocketAddr::new(l.ip(), l.port().wrapping_add(1)));
        let rtcp = self.latched[RTCP].or(natted).or(self.target.rtcp());
        self.dest = [rtp.map(RawAddr::new), rtcp.map(RawAddr::new)];
    }

    /// Whether a packet from `src` on socket `kind` belongs to this leg (latching
    /// it when the rules say so).
    fn accept(&mut self, kind: usize, src: SocketAddr, counts: &mut Local) -> bool {
        if self.latched[kind] == Some(src) {
            return true;
        }
        let Some(ip) = self.target.ip else {
            return false;
        };
        let declared = if kind == RTP {
            self.target.rtp()
        } else {
            self.target.rtcp()
        };
        let first = self.latched[kind].is_none()
            && self.retired[kind] != Some(src)
            && (src.ip() == ip || (behind_nat(ip) && !behind_nat(src.ip())));
        if declared == Some(src) || first {
            self.latched[kind] = Some(src);
            self.refresh_dest();
            counts.latches += 1;
            return true;
        }
        false
    }
}

/// An address a NAT'ed phone would put in its SDP: private, shared (CGNAT),
/// link-local or unique-local.
fn behind_nat(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private() || v4.is_link_local() || (o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments()[0];
            (s & 0xfe00) == 0xfc00 || (s & 0xffc0) == 0xfe80
        }
    }
}

#[derive(Debug)]
struct Session {
    id: u64,
    legs: [LegState; 2],
    last_rx: Instant,
    timed_out: bool,
    events: mpsc::Sender<MediaEvent>,
    ivr: Option<Box<Ivr>>,
}

/// One forwarding thread's state.
pub(super) struct Worker {
    /// This worker's index (its parked pairs in the pool).
    me: usize,
    epoll: Epoll,
    /// Per file descriptor in the epoll set (the event token is the descriptor):
    /// `slot << 2 | leg << 1 | kind`, plus one; 0 for a parked socket, whose
    /// packets are read and dropped.
    by_fd: Vec<u64>,
    waker: Arc<Waker>,
    rx: Receiver<Command>,
    sessions: Vec<Option<Session>>,
    free_slots: Vec<usize>,
    index: HashMap<u64, usize>,
    pool: Arc<PortPool>,
    counters: Arc<Counters>,
    timeout: Duration,
    /// Sleep of a busy worker between passes.
    coalesce: Duration,
    batch: Batch,
    pending_metrics: Local,
    /// Slots of sessions playing a prompt.
    playing: Vec<usize>,
}

impl Worker {
    pub(super) fn new(
        me: usize,
        waker: Arc<Waker>,
        rx: Receiver<Command>,
        pool: Arc<PortPool>,
        counters: Arc<Counters>,
        timeout: Duration,
        coalesce: Duration,
    ) -> std::io::Result<Worker> {
        let epoll = Epoll::new(EVENTS)?;
        epoll.add(waker.raw(), WAKER_TOKEN)?;
        Ok(Worker {
            me,
            epoll,
            by_fd: Vec::new(),
            waker,
            rx,
            sessions: Vec::new(),
            free_slots: Vec::new(),
            index: HashMap::new(),
            pool,
            counters,
            timeout,
            coalesce,
            batch: Batch::new(),
            pending_metrics: Local::default(),
            playing: Vec::new(),
        })
    }

    /// Runs until every command sender is gone.
    pub(super) fn run(mut self) {
        let mut last_tick = Instant::now();
        let mut last_metrics = last_tick;
        let mut busy = false;
        let mut full = false;
        loop {
            // Under load, poll every COALESCE instead of sleeping in epoll_wait
            // until the next packet: one wake-up then serves every socket that
            // became readable meanwhile (a context switch per ~200 µs instead of
            // one per few packets). Idle workers block in epoll_wait. A wait that
            // filled the event buffer is followed by another at once: more
            // sockets are ready than one wait reports, and sleeping first would
            // let their packets queue up (delay growing with load).
            let wait_ms = if full {
                0
            } else if busy || !self.playing.is_empty() {
                std::thread::sleep(self.coalesce);
                0
            } else {
                TICK.as_millis() as i32
            };
            let ready = match self.epoll.wait(wait_ms) {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(error = %e, "media worker: epoll_wait failed");
                    std::thread::sleep(TICK);
                    0
                }
            };
            let now = Instant::now();
            let mut counts = Local::default();
            // Commands first: a new session or a new target posted without a
            // wake-up (see `WorkerHandle::post`) is in place before the packets
            // that woke the worker are read.
            if !self.commands(now) {
                break;
            }
            for i in 0..ready {
                let token = self.epoll.token(i);
                if token == WAKER_TOKEN {
                    self.waker.drain();
                } else {
                    self.forward(token, now, &mut counts);
                }
            }
            busy = ready > 1 || (ready == 1 && self.epoll.token(0) != WAKER_TOKEN);
            full = ready == EVENTS;
            if !self.playing.is_empty() {
                self.pump(Instant::now(), &mut counts);
            }
            if now.duration_since(last_tick) >= TICK {
                last_tick = now;
                self.check_timeouts(now, &mut counts);
            }
            if !counts.is_zero() {
                counts.publish(&self.counters);
                self.pending_metrics.add(&counts);
            }
            if now.duration_since(last_metrics) >= METRICS_EVERY {
                last_metrics = now;
                self.pending_metrics.record_metrics();
                self.pending_metrics = Local::default();
            }
        }
        let ids: Vec<u64> = self.index.keys().copied().collect();
        for id in ids {
            self.remove(id);
        }
    }

    /// Applies queued commands; false once the relay is gone.
    fn commands(&mut self, now: Instant) -> bool {
        loop {
            match self.rx.try_recv() {
                Ok(Command::Add(new)) => self.add(*new, now),
                Ok(Command::Update { id, leg, target }) => self.update(id, leg, target),
                Ok(Command::Remove { id }) => self.remove(id),
                Ok(Command::Ivr { id, law, te_pt }) => {
                    if let Some(s) = self.session_mut(id) {
                        s.ivr = Some(Box::new(Ivr::new(law, te_pt, now)));
                    }
                }
                Ok(Command::Play { id, prompt }) => self.play(id, prompt, now),
                Ok(Command::Bridge { id }) => {
                    if let Some(s) = self.session_mut(id) {
                        s.ivr = None;
                    }
                }
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            }
        }
    }

    fn add(&mut self, new: NewSession, now: Instant) {
        let slot = match self.free_slots.pop() {
            Some(s) => s,
            None => {
                self.sessions.push(None);
                self.sessions.len() - 1
            }
        };
        let [a, b] = new.legs;
        let leg = |sock| LegState {
            sock,
            target: Target::default(),
            latched: [None; 2],
            retired: [None; 2],
            dest: [None; 2],
        };
        let sess = Session {
            id: new.id,
            legs: [leg(a), leg(b)],
            last_rx: now,
            timed_out: false,
            events: new.events,
            ivr: None,
        };
        for (l, state) in sess.legs.iter().enumerate() {
            for kind in [RTP, RTCP] {
                let fd = state.fd(kind);
                match state.sock.parked {
                    // Parked here: already in the epoll set. Whatever the pair's
                    // previous call sent lately is not ours.
                    Some(since) => {
                        if now.saturating_duration_since(since) < QUIET {
                            while self.batch.recv(fd).is_ok_and(|n| n == BATCH) {}
                        }
                    }
                    None => {
                        if let Err(e) = self.epoll.add_edge(fd, fd as u64) {
                            tracing::error!(error = %e, "media worker: epoll_ctl failed");
                        }
                    }
                }
                let token = ((slot as u64) << 2) | ((l as u64) << 1) | kind as u64;
                self.set_token(fd, token + 1);
            }
        }
        if let Some(s) = self.sessions.get_mut(slot) {
            *s = Some(sess);
        }
        self.index.insert(new.id, slot);
    }

    fn set_token(&mut self, fd: RawFd, token: u64) {
        let Ok(i) = usize::try_from(fd) else {
            return;
        };
        if self.by_fd.len() <= i {
            self.by_fd.resize(i + 1, 0);
        }
        self.by_fd[i] = token;
    }

    fn session_mut(&mut self, id: u64) -> Option<&mut Session> {
        self.index
            .get(&id)
            .and_then(|&slot| self.sessions.get_mut(slot))
            .and_then(Option::as_mut)
    }

    fn play(&mut self, id: u64, prompt: Option<Arc<Prompt>>, now: Instant) {
        let Some(&slot) = self.index.get(&id) else {
            return;
        };
        let Some(ivr) = self
            .sessions
            .get_mut(slot)
            .and_then(Option::as_mut)
            .and_then(|s| s.ivr.as_mut())
        else {
            return;
        };
        let starts = prompt.is_some();
        ivr.play(prompt, now);
        if starts && !self.playing.contains(&slot) {
            self.playing.push(slot);
        }
    }

    /// Sends the prompt packets due at `now`; reports prompts that finished.
    fn pump(&mut self, now: Instant, counts: &mut Local) {
        let sessions = &mut self.sessions;
        self.playing.retain(|&slot| {
            let Some(sess) = sessions.get_mut(slot).and_then(Option::as_mut) else {
                return false;
            };
            let leg = &sess.legs[0];
            let dest = leg.latched[RTP].or(leg.target.rtp());
            let Some(ivr) = sess.ivr.as_mut() else {
                return false;
            };
            if !ivr.is_playing() {
                return false;
            }
            let r = ivr.pump(now, &leg.sock.rtp, dest);
            counts.relayed_packets += r.sent;
            if r.finished {
                let _ = sess.events.try_send(MediaEvent::PromptDone);
            }
            !r.finished
        });
    }

    fn update(&mut self, id: u64, leg: Leg, target: Target) {
        let Some(sess) = self
            .index
            .get(&id)
            .and_then(|&slot| self.sessions.get_mut(slot))
            .and_then(Option::as_mut)
        else {
            return;
        };
        let state = &mut sess.legs[leg_index(leg)];
        let moved = state.target.ip != target.ip
            || state.target.rtp_port != target.rtp_port
            || state.target.rtcp != target.rtcp;
        state.target = target;
        if moved {
            // New remote address (or hold with c=0.0.0.0): learn the source again,
            // but not from the address the leg just left.
            for kind in [RTP, RTCP] {
                if let Some(old) = state.latched[kind].take() {
                    state.retired[kind] = Some(old);
                }
            }
        }
        state.refresh_dest();
    }

    fn remove(&mut self, id: u64) {
        let Some(slot) = self.index.remove(&id) else {
            return;
        };
        let Some(sess) = self.sessions.get_mut(slot).and_then(Option::take) else {
            return;
        };
        self.playing.retain(|s| *s != slot);
        self.free_slots.push(slot);
        // Parked: still bound and in the epoll set, its packets dropped from now
        // on (or closed by the pool, which takes it out of the set).
        for state in &sess.legs {
            self.set_token(state.fd(RTP), 0);
            self.set_token(state.fd(RTCP), 0);
        }
        for state in sess.legs {
            self.pool.park(state.sock, self.me);
        }
    }

    fn check_timeouts(&mut self, now: Instant, counts: &mut Local) {
        for sess in self.sessions.iter_mut().flatten() {
            if !sess.timed_out && now.duration_since(sess.last_rx) >= self.timeout {
                sess.timed_out = true;
                counts.timeouts += 1;
                tracing::info!(session = sess.id, "media timeout");
                let _ = sess.events.try_send(MediaEvent::Timeout);
            }
        }
    }

    /// Reads the socket behind `token` until it is drained (it is edge-triggered)
    /// and forwards what passes.
    fn forward(&mut self, token: u64, now: Instant, counts: &mut Local) {
        while self.forward_batch(token, now, counts) == BATCH {}
    }

    /// Reads one batch from the socket behind `token` and forwards what passes;
    /// returns how many datagrams it read.
    fn forward_batch(&mut self, fd: u64, now: Instant, counts: &mut Local) -> usize {
        let token = match usize::try_from(fd).ok().and_then(|i| self.by_fd.get(i)) {
            Some(&t) if t > 0 => t - 1,
            _ => {
                // A parked socket: late packets of an ended call.
                let n = RawFd::try_from(fd).map_or(0, |fd| self.batch.recv(fd).unwrap_or(0));
                counts.no_session += n as u64;
                return n;
            }
        };
        let slot = (token >> 2) as usize;
        let from = ((token >> 1) & 1) as usize;
        let kind = (token & 1) as usize;
        let to = 1 - from;
        let Some(sess) = self.sessions.get_mut(slot).and_then(Option::as_mut) else {
            return 0;
        };
        let batch = &mut self.batch;
        let n = match batch.recv(sess.legs[from].fd(kind)) {
            Ok(n) => n,
            Err(_) => return 0,
        };
        if n == 0 {
            return 0;
        }
        if let Some(ivr) = sess.ivr.as_mut() {
            // IVR mode: leg A's media ends here (DTMF is read, nothing forwarded);
            // nothing comes from B, which is not called yet.
            if from != 0 {
                return n;
            }
            for i in 0..n {
                let Some((src, pkt)) = batch.packet(i) else {
                    continue;
                };
                if !sess.legs[0].accept(kind, src, counts) {
                    counts.unknown_source += 1;
                    continue;
                }
                sess.last_rx = now;
                if kind == RTP {
                    if let Some(d) = ivr.on_rtp(pkt) {
                        let _ = sess.events.try_send(MediaEvent::Dtmf(d));
                    }
                }
            }
            return n;
        }
        let mux = sess.legs[0].target.mux && sess.legs[1].target.mux;
        let out_kind = if mux { RTP } else { kind };
        let dest = sess.legs[to].dest[out_kind];
        let scrub = sess.legs[from].target.scrub_rtcp;
        let [a, b] = &mut sess.legs;
        let (src_leg, dst_leg) = if from == 0 { (a, b) } else { (b, a) };
        for i in 0..n {
            let Some((src, pkt)) = batch.packet(i) else {
                counts.unknown_source += 1;
                continue;
            };
            if !src_leg.accept(kind, src, counts) {
                counts.unknown_source += 1;
                continue;
            }
            sess.last_rx = now;
            let Some(dest) = dest.as_ref() else {
                counts.no_session += 1;
                continue;
            };
            if scrub && (kind == RTCP || rtcp::is_rtcp(pkt)) {
                rtcp::scrub_sdes(pkt);
            }
            let len = pkt.len();
            batch.queue(i, len, dest);
            counts.relayed_packets += 1;
            counts.relayed_bytes += len as u64;
        }
        let lost = batch.flush(dst_leg.fd(out_kind)) as u64;
        counts.send_error += lost;
        counts.relayed_packets -= lost.min(counts.relayed_packets);
        n
    }
}

fn leg_index(leg: Leg) -> usize {
    match leg {
        Leg::A => 0,
        Leg::B => 1,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn leg(sdp: &str) -> LegState {
        let sock = LegSockets {
            port: 0,
            rtp: std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
            rtcp: std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
            parked: None,
        };
        let t: SocketAddr = sdp.parse().unwrap();
        let mut l = LegState {
            sock,
            target: Target {
                ip: Some(t.ip()),
                rtp_port: t.port(),
                ..Target::default()
            },
            latched: [None; 2],
            retired: [None; 2],
            dest: [None; 2],
        };
        l.refresh_dest();
        l
    }

    #[test]
    fn a_natted_leg_latches_from_its_public_address() {
        let mut c = Local::default();
        let mut l = leg("192.168.1.20:4000");
        assert_eq!(format!("{:?}", l.dest[RTP]), "Some(192.168.1.20:4000)");
        let public: SocketAddr = "198.51.100.7:61000".parse().unwrap();
        assert!(l.accept(RTP, public, &mut c));
        assert_eq!(format!("{:?}", l.dest[RTP]), "Some(198.51.100.7:61000)");
        // RTCP follows the NAT until RTCP itself latches.
        assert_eq!(format!("{:?}", l.dest[RTCP]), "Some(198.51.100.7:61001)");
        // Once latched, another public address is a stranger.
        assert!(!l.accept(RTP, "198.51.100.8:61000".parse().unwrap(), &mut c));
        assert_eq!(c.latches, 1);
    }

    #[test]
    fn a_public_leg_only_latches_from_its_own_ip() {
        let mut c = Local::default();
        let mut l = leg("203.0.113.5:4000");
        assert!(!l.accept(RTP, "198.51.100.7:4000".parse().unwrap(), &mut c));
        assert!(l.accept(RTP, "203.0.113.5:5555".parse().unwrap(), &mut c));
        assert_eq!(format!("{:?}", l.dest[RTCP]), "Some(203.0.113.5:4001)");
        // The declared address itself may always take the latch back.
        assert!(l.accept(RTP, "203.0.113.5:4000".parse().unwrap(), &mut c));
        assert!(!l.accept(RTP, "203.0.113.5:5555".parse().unwrap(), &mut c));
    }

    #[test]
    fn nat_addresses_are_recognised() {
        for ip in [
            "10.1.2.3",
            "192.168.1.9",
            "172.16.0.1",
            "100.64.0.1",
            "fd00::1",
        ] {
            assert!(behind_nat(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["127.0.0.1", "203.0.113.7", "100.128.0.1", "2001:db8::1"] {
            assert!(!behind_nat(ip.parse().unwrap()), "{ip}");
        }
    }
}
