//! The relay's public face: [`MediaRelay`] (start, allocate, stats) and
//! [`MediaSession`] (SDP offer/answer per leg, events, release on drop).
//!
//! This module owns the control side: it binds a session's sockets from the
//! [`PortPool`], rewrites SDP ([`super::rewrite`]) and tells the session's worker
//! ([`super::worker`]) what changed, over that worker's channel. It never touches
//! packets.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::counters::Counters;
use super::local_sdp;
use super::ports::PortPool;
use super::prompt::{Prompt, G711};
use super::rewrite::{self, OriginState, Target};
use super::sys::Waker;
use super::worker::{Command, NewSession, Worker};
use super::{Advertise, Leg, MediaError, MediaEvent};

/// Settings of the media relay (built from `[media]` in the config).
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// First and last port of the RTP range (inclusive); RTP ports are even, RTCP
    /// is RTP + 1.
    pub ports: (u16, u16),
    /// Address the sockets bind to.
    pub bind_ip: IpAddr,
    /// Address advertised in SDP when a call gives none.
    pub public_ip: IpAddr,
    /// No packets from either leg for this long → [`MediaEvent::Timeout`].
    pub timeout: Duration,
    /// Forwarding threads.
    pub workers: usize,
    /// How long a busy worker gathers packets between passes (see
    /// [`DEFAULT_COALESCE`]): at most this much delay added per packet, for fewer
    /// wake-ups and system calls per packet.
    pub coalesce: Duration,
}

/// Default of [`MediaConfig::coalesce`] (`[media] coalesce_us`). Measured with
/// `loadtest/media.sh` at 1,000 calls (100,000 packets/s): 1 ms gives 3.8 ms of
/// CPU per 1,000 packets and a transit delay (generator → relay → generator) of
/// p50 2.4 / p99 3.7 ms; 200 µs gives 4.4 ms of CPU at p50 0.7 / p99 1.2 ms. A
/// few milliseconds are nothing beside a phone's 20–60 ms jitter buffer.
pub const DEFAULT_COALESCE: Duration = Duration::from_millis(1);

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            ports: (20000, 39999),
            bind_ip: IpAddr::from([127, 0, 0, 1]),
            public_ip: IpAddr::from([127, 0, 0, 1]),
            timeout: Duration::from_secs(60),
            workers: 1,
            coalesce: DEFAULT_COALESCE,
        }
    }
}

/// Point-in-time figures of the relay (counters since start).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaStats {
    /// Sessions allocated and not yet released.
    pub active_sessions: usize,
    /// Port pairs free for new legs.
    pub free_port_pairs: usize,
    /// Packets (RTP and RTCP) forwarded to the other leg.
    pub relayed_packets: u64,
    /// Bytes of those packets (UDP payload).
    pub relayed_bytes: u64,
    /// Packets dropped because they came from an address that is not the leg's.
    pub dropped_unknown_source: u64,
    /// Packets dropped because the other leg has no media address (not yet
    /// negotiated, or on hold with `c=0.0.0.0`).
    pub dropped_no_session: u64,
    /// Packets the kernel refused to send.
    pub dropped_send_error: u64,
    /// Times a leg's source address was learnt (or learnt again).
    pub latches: u64,
    /// Media timeouts reported.
    pub timeouts: u64,
}

#[derive(Debug)]
struct WorkerHandle {
    tx: std_mpsc::Sender<Command>,
    waker: Arc<Waker>,
}

impl WorkerHandle {
    /// Queues `cmd` and wakes the worker for it.
    fn send(&self, cmd: Command) -> Result<(), Command> {
        self.tx.send(cmd).map_err(|e| e.0)?;
        self.waker.wake();
        Ok(())
    }

    /// Queues `cmd` without waking the worker: it is applied at the worker's next
    /// wake-up (a packet, another command, or its tick within `TICK`), before it
    /// reads any packet. For commands only packets wait on: a new session, a
    /// leg's new target (its packets wake the worker, which applies the target
    /// first) and a released session. Saves a wake-up (an eventfd write, a
    /// context switch of the worker) per command: four per call.
    fn post(&self, cmd: Command) -> Result<(), Command> {
        self.tx.send(cmd).map_err(|e| e.0)
    }
}

/// Below this many free pairs a released session wakes its worker, so its ports
/// are back at once rather than within a tick.
const LOW_PORTS: usize = 64;

#[derive(Debug)]
struct Shared {
    cfg: MediaConfig,
    pool: Arc<PortPool>,
    workers: Vec<WorkerHandle>,
    counters: Arc<Counters>,
    active: AtomicUsize,
    next_id: AtomicU64,
}

/// The process-wide media relay. Cheap to clone; the forwarding threads stop
/// when the last clone and the last session are dropped.
#[derive(Debug, Clone)]
pub struct MediaRelay {
    shared: Arc<Shared>,
}

impl MediaRelay {
    /// Starts the relay: `cfg.workers` forwarding threads (at least one) and the
    /// port pool. Callable from inside or outside a Tokio runtime.
    pub fn start(cfg: MediaConfig) -> Result<MediaRelay, MediaError> {
        let (lo, hi) = cfg.ports;
        let nofile = super::ports::raise_nofile_limit();
        let pool = Arc::new(PortPool::new(lo, hi, cfg.workers.max(1), nofile));
        let counters = Arc::new(Counters::default());
        let mut workers = Vec::new();
        for n in 0..cfg.workers.max(1) {
            let (tx, rx) = std_mpsc::channel();
            let waker = Arc::new(Waker::new()?);
            let worker = Worker::new(
                n,
                waker.clone(),
                rx,
                pool.clone(),
                counters.clone(),
                cfg.timeout,
                cfg.coalesce,
            )?;
            std::thread::Builder::new()
                .name(format!("media-{n}"))
                .spawn(move || worker.run())?;
            workers.push(WorkerHandle { tx, waker });
        }
        metrics::gauge!("maskline_media_sessions_active").set(0.0);
        Ok(MediaRelay {
            shared: Arc::new(Shared {
                cfg,
                pool,
                workers,
                counters,
                active: AtomicUsize::new(0),
                next_id: AtomicU64::new(1),
            }),
        })
    }

    /// A session for one call: one port pair per leg.
    pub fn allocate(&self, adv: Advertise) -> Result<MediaSession, MediaError> {
        let s = &self.shared;
        let id = s.next_id.fetch_add(1, Ordering::Relaxed);
        let w = (id as usize) % s.workers.len();
        let a = s.pool.bind(s.cfg.bind_ip, w)?;
        let b = match s.pool.bind(s.cfg.bind_ip, w) {
            Ok(b) => b,
            Err(e) => {
                let port = a.port;
                drop(a);
                s.pool.release(port);
                return Err(e);
            }
        };
        let ports = [a.port, b.port];
        let (tx, rx) = mpsc::channel(32);
        let worker = &s.workers[w];
        if let Err(cmd) = worker.post(Command::Add(Box::new(NewSession {
            id,
            legs: [a, b],
            events: tx,
        }))) {
            drop(cmd);
            for p in ports {
                s.pool.release(p);
            }
            return Err(MediaError::Io(std::io::Error::other(
                "media worker is not running",
            )));
        }
        s.active.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!("maskline_media_sessions_active").increment(1.0);
        let sid = rand::random::<u32>() as u64;
        Ok(MediaSession {
            shared: s.clone(),
            id,
            ports,
            adv: [
                adv.a.unwrap_or(s.cfg.public_ip),
                adv.b.unwrap_or(s.cfg.public_ip),
            ],
            origin: [OriginState::new(sid), OriginState::new(sid + 1)],
            targets: [Target::default(); 2],
            events: rx,
        })
    }

    /// Current figures.
    pub fn stats(&self) -> MediaStats {
        let s = &self.shared;
        let c = &s.counters;
        let r = Ordering::Relaxed;
        MediaStats {
            active_sessions: s.active.load(r),
            free_port_pairs: s.pool.free_pairs(),
            relayed_packets: c.relayed_packets.load(r),
            relayed_bytes: c.relayed_bytes.load(r),
            dropped_unknown_source: c.dropped_unknown_source.load(r),
            dropped_no_session: c.dropped_no_session.load(r),
            dropped_send_error: c.dropped_send_error.load(r),
            latches: c.latches.load(r),
            timeouts: c.timeouts.load(r),
        }
    }
}

/// What [`MediaSession::answer_locally`] gives back.
#[derive(Debug, Clone)]
pub struct LocalAnswer {
    /// The SDP answer for leg A (the relay's own).
    pub sdp: Vec<u8>,
    /// The offer for the B leg, when the call is bridged after the IVR.
    pub b_offer: Vec<u8>,
    /// The G.711 law leg A speaks.
    pub law: G711,
    /// Whether A offered RFC 4733 `telephone-event`.
    pub dtmf: bool,
}

/// The media of one call. Dropping it releases its ports (once its worker has
/// closed the sockets, a moment later).
#[derive(Debug)]
pub struct MediaSession {
    shared: Arc<Shared>,
    id: u64,
    /// RTP port facing leg A, leg B.
    ports: [u16; 2],
    /// Address advertised to leg A, leg B.
    adv: [IpAddr; 2],
    /// `o=` state of the bodies sent to leg A, leg B.
    origin: [OriginState; 2],
    /// Last target sent to the worker for leg A, leg B.
    targets: [Target; 2],
    events: mpsc::Receiver<MediaEvent>,
}

fn idx(leg: Leg) -> usize {
    match leg {
        Leg::A => 0,
        Leg::B => 1,
    }
}

impl MediaSession {
    /// An SDP offer received from `from`; returns the offer to send to the other leg.
    pub fn offer(&mut self, from: Leg, sdp: &[u8]) -> Result<Vec<u8>, MediaError> {
        self.rewrite(from, sdp)
    }

    /// An SDP answer received from `from`; returns the answer to send to the other leg.
    pub fn answer(&mut self, from: Leg, sdp: &[u8]) -> Result<Vec<u8>, MediaError> {
        self.rewrite(from, sdp)
    }

    /// The relay's RTP port facing `leg` (where that leg sends its media).
    pub fn local_port(&self, leg: Leg) -> u16 {
        self.ports[idx(leg)]
    }

    /// Events for the owning call (media timeout).
    pub fn events(&mut self) -> &mut mpsc::Receiver<MediaEvent> {
        &mut self.events
    }

    /// Takes the event receiver (to await events in a task of its own); the
    /// session keeps a closed one.
    pub fn take_events(&mut self) -> mpsc::Receiver<MediaEvent> {
        let (_, closed) = mpsc::channel(1);
        std::mem::replace(&mut self.events, closed)
    }

    /// IVR: the relay answers leg A's `offer` itself. Picks the first G.711 codec
    /// A offers (and `telephone-event` if offered), puts leg A into IVR mode
    /// (its media ends at the relay: DTMF is read, prompts are sent) and returns
    /// the SDP answer for A and the offer for a later B leg (A's offer reduced
    /// to the chosen codecs, rewritten to the relay's B side).
    pub fn answer_locally(&mut self, offer: &[u8]) -> Result<LocalAnswer, MediaError> {
        let chosen = local_sdp::choose_g711(offer)?;
        let b_offer = self.rewrite(Leg::A, &chosen.reduced)?;
        let answer = local_sdp::local_answer(
            self.adv[0],
            self.ports[0],
            chosen.law,
            chosen.te_pt,
            &mut self.origin[0],
        );
        self.command(Command::Ivr {
            id: self.id,
            law: chosen.law,
            te_pt: chosen.te_pt,
        })?;
        Ok(LocalAnswer {
            sdp: answer,
            b_offer,
            law: chosen.law,
            dtmf: chosen.te_pt.is_some(),
        })
    }

    /// IVR: plays `prompt` to leg A from now (replacing what plays);
    /// [`MediaEvent::PromptDone`] when its last packet is sent.
    pub fn play(&mut self, prompt: &Arc<Prompt>) -> Result<(), MediaError> {
        self.command(Command::Play {
            id: self.id,
            prompt: Some(prompt.clone()),
        })
    }

    /// IVR: stops the prompt playing (barge-in), without a `PromptDone`.
    pub fn stop_prompt(&mut self) -> Result<(), MediaError> {
        self.command(Command::Play {
            id: self.id,
            prompt: None,
        })
    }

    /// IVR: leaves IVR mode; packets are forwarded between the legs from now on.
    pub fn bridge(&mut self) -> Result<(), MediaError> {
        self.command(Command::Bridge { id: self.id })
    }

    fn command(&self, cmd: Command) -> Result<(), MediaError> {
        let worker = &self.shared.workers[(self.id as usize) % self.shared.workers.len()];
        worker
            .send(cmd)
            .map_err(|_| MediaError::Io(std::io::Error::other("media worker is not running")))
    }

    fn rewrite(&mut self, from: Leg, sdp: &[u8]) -> Result<Vec<u8>, MediaError> {
        let to = idx(from.other());
        let (body, target) =
            rewrite::rewrite(sdp, self.adv[to], self.ports[to], &mut self.origin[to])?;
        if self.targets[idx(from)] != target {
            self.targets[idx(from)] = target;
            let worker = &self.shared.workers[(self.id as usize) % self.shared.workers.len()];
            worker
                .post(Command::Update {
                    id: self.id,
                    leg: from,
                    target,
                })
                .map_err(|_| {
                    MediaError::Io(std::io::Error::other("media worker is not running"))
                })?;
        }
        Ok(body)
    }
}

impl Drop for MediaSession {
    fn drop(&mut self) {
        let s = &self.shared;
        let worker = &s.workers[(self.id as usize) % s.workers.len()];
        // If the worker is gone its sockets are closed already; nothing to free.
        let _ = if s.pool.free_pairs() < LOW_PORTS {
            worker.send(Command::Remove { id: self.id })
        } else {
            worker.post(Command::Remove { id: self.id })
        };
        s.active.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!("maskline_media_sessions_active").decrement(1.0);
    }
}
