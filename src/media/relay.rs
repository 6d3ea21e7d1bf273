//! Media relay engine: port pool, sessions and SDP rewriting.
//!
//! STUB (signalling only): this version allocates port pairs and rewrites SDP so
//! that neither leg learns the other's address, but does not forward packets yet.
//! The forwarding engine replaces the internals; the public items keep their shape.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use maskline_sip::sdp::{SdpLine, SessionDescription};
use tokio::sync::mpsc;

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
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            ports: (20000, 39999),
            bind_ip: IpAddr::from([127, 0, 0, 1]),
            public_ip: IpAddr::from([127, 0, 0, 1]),
            timeout: Duration::from_secs(60),
            workers: 1,
        }
    }
}

/// Point-in-time figures of the relay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaStats {
    /// Sessions allocated and not yet released.
    pub active_sessions: usize,
    /// Port pairs free for new legs.
    pub free_port_pairs: usize,
}

#[derive(Debug)]
struct Shared {
    cfg: MediaConfig,
    free: Mutex<VecDeque<u16>>,
    active: std::sync::atomic::AtomicUsize,
}

/// The process-wide media relay. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MediaRelay {
    shared: Arc<Shared>,
}

impl MediaRelay {
    /// Starts the relay (forwarding threads, port pool).
    pub fn start(cfg: MediaConfig) -> Result<MediaRelay, MediaError> {
        let (lo, hi) = cfg.ports;
        let first = lo + (lo % 2);
        let free: VecDeque<u16> = (first..hi).step_by(2).collect();
        Ok(MediaRelay {
            shared: Arc::new(Shared {
                cfg,
                free: Mutex::new(free),
                active: Default::default(),
            }),
        })
    }

    /// A session for one call: one port pair per leg.
    pub fn allocate(&self, adv: Advertise) -> Result<MediaSession, MediaError> {
        let (a, b) = {
            let mut free = self
                .shared
                .free
                .lock()
                .map_err(|_| MediaError::PortsExhausted)?;
            if free.len() < 2 {
                return Err(MediaError::PortsExhausted);
            }
            match (free.pop_front(), free.pop_front()) {
                (Some(a), Some(b)) => (a, b),
                _ => return Err(MediaError::PortsExhausted),
            }
        };
        self.shared
            .active
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (_tx, rx) = mpsc::channel(4);
        Ok(MediaSession {
            shared: self.shared.clone(),
            ports: [a, b],
            adv: [
                adv.a.unwrap_or(self.shared.cfg.public_ip),
                adv.b.unwrap_or(self.shared.cfg.public_ip),
            ],
            events: rx,
            _events_tx: _tx,
            version: 0,
        })
    }

    /// Current figures.
    pub fn stats(&self) -> MediaStats {
        MediaStats {
            active_sessions: self
                .shared
                .active
                .load(std::sync::atomic::Ordering::Relaxed),
            free_port_pairs: self.shared.free.lock().map(|f| f.len()).unwrap_or(0),
        }
    }
}

/// The media of one call. Dropping it releases its ports.
#[derive(Debug)]
pub struct MediaSession {
    shared: Arc<Shared>,
    /// RTP port facing leg A, leg B.
    ports: [u16; 2],
    /// Address advertised to leg A, leg B.
    adv: [IpAddr; 2],
    events: mpsc::Receiver<MediaEvent>,
    _events_tx: mpsc::Sender<MediaEvent>,
    version: u64,
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

    fn rewrite(&mut self, from: Leg, sdp: &[u8]) -> Result<Vec<u8>, MediaError> {
        let to = from.other();
        let mut desc =
            SessionDescription::parse(sdp).map_err(|e| MediaError::BadSdp(e.to_string()))?;
        let addr = self.adv[idx(to)];
        let port = self.ports[idx(to)];
        self.version += 1;
        desc.set_connection_address(addr);
        desc.set_origin("-", addr)
            .map_err(|e| MediaError::BadSdp(e.to_string()))?;
        if let Some(o) = desc.origin_mut() {
            o.session_id = self.ports[0].to_string();
            o.session_version = self.version.to_string();
        }
        for m in &mut desc.media {
            if m.media.port != 0 {
                m.set_port(port);
            }
            m.lines.retain(|l| {
                !matches!(l, SdpLine::Attribute(a)
                    if matches!(a.name.as_str(), "rtcp" | "candidate" | "remote-candidates"))
            });
        }
        Ok(desc.to_string().into_bytes())
    }
}

impl Drop for MediaSession {
    fn drop(&mut self) {
        if let Ok(mut free) = self.shared.free.lock() {
            free.extend(self.ports);
        }
        self.shared
            .active
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}
