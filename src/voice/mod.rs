//! Voice: the SIP B2BUA that bridges courier and customer calls through virtual
//! numbers.
//!
//! A carrier trunk delivers an INVITE for virtual number X from caller C. The relay
//! answers `100 Trying` at once, asks the store where (X, C) goes (one round trip,
//! [`router`]), and places a new call (the B leg, a dialog of its own) to the bound
//! party through the trunk's gateway with X as From and P-Asserted-Identity. Media
//! goes through the relay's RTP ports ([`crate::media`]); every SDP is rewritten.
//!
//! Module map (bytes to calls):
//! - [`transport`]: UDP sockets and TCP connections; framing only.
//! - [`trunk`]: trusted sources (ACL), outbound gateways, number normalisation.
//! - [`router`]: the routing decision (bridge / IVR / default party / announce /
//!   no binding / unknown / store down).
//! - [`ivr_policy`]: `[sip.ivr]` per pool, prompt sets.
//! - [`ivr`]: calls the relay answers itself (extension IVR, announcements, AXN).
//! - [`engine`]: one task owning the transaction layer, live calls and timers.
//! - [`call`]: the B2BUA call flow and topology hiding.
//! - [`records`]: call records written off the call path.
//!
//! Limits and where they hold: the per-(caller, X) call rate (`governor`, default
//! 10/min → 486) and the per-trunk CPS (→ 503 + Retry-After) are **per relay
//! process**: N relays behind a carrier's load balancer allow N times the rate. The
//! no-answer timeout (→ 480 + CANCEL) and maximum call duration (→ BYE both) are per
//! call. Store trouble answers 503 + Retry-After within the store timeout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use maskline_sip::transaction::Transport;
use tokio::sync::{mpsc, watch};

mod bleg;
pub mod call;
mod call_answer;
mod call_dialog;
pub mod engine;
pub mod ivr;
pub mod ivr_policy;
pub mod records;
pub mod router;
pub mod transport;
pub mod trunk;

use crate::config::SipConfig;
use crate::events::RecordStore;
use crate::media::MediaRelay;
use crate::store::BindingStore;

/// Why the voice relay cannot start.
#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    /// A listen socket could not be bound.
    #[error("sip.listen: cannot listen on {0}: {1}")]
    Bind(String, #[source] std::io::Error),
    /// Another socket error.
    #[error("sip: {0}")]
    Io(#[from] std::io::Error),
    /// A setting is unusable.
    #[error("{field}: {message}")]
    Config {
        /// Dotted field.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// Settings the engine reads on the call path.
#[derive(Debug, Clone)]
pub struct VoiceSettings {
    /// Our UDP address (Via/Contact on UDP legs).
    pub udp: Option<SocketAddr>,
    /// Our TCP address.
    pub tcp: Option<SocketAddr>,
    /// Our TLS address.
    pub tls: Option<SocketAddr>,
    /// Host to write instead of the bound IP (NAT, DNS name).
    pub host: Option<String>,
    /// 403 to untrusted sources instead of silence.
    pub reject_untrusted: bool,
    /// Status for callers without a binding.
    pub no_binding_status: u16,
    /// Ringing limit.
    pub no_answer_timeout: Duration,
    /// Call length limit.
    pub max_call_duration: Duration,
    /// How long live calls may finish on shutdown.
    pub drain_timeout: Duration,
}

impl VoiceSettings {
    /// `host:port` we put in Via and Contact for a leg on `transport`.
    pub fn local(&self, transport: Transport) -> String {
        let addr = match transport {
            Transport::Tls => self.tls.or(self.tcp).or(self.udp),
            Transport::Tcp => self.tcp.or(self.udp),
            _ => self.udp.or(self.tcp),
        };
        let port = addr.map_or(5060, |a| a.port());
        match (&self.host, addr) {
            (Some(h), _) => format!("{h}:{port}"),
            (None, Some(a)) => a.to_string(),
            (None, None) => format!("127.0.0.1:{port}"),
        }
    }
}

/// Opens the stores the engine uses on its own thread (see [`Voice::start_with`]).
pub type EngineStores =
    Box<dyn FnOnce() -> Result<(Arc<dyn BindingStore>, Arc<dyn RecordStore>), String> + Send>;

/// A running voice relay.
#[derive(Debug)]
pub struct Voice {
    /// Bound UDP addresses.
    pub udp_addrs: Vec<SocketAddr>,
    /// Bound TCP addresses.
    pub tcp_addrs: Vec<SocketAddr>,
    /// Bound TLS addresses.
    pub tls_addrs: Vec<SocketAddr>,
    stop: watch::Sender<bool>,
    stop_transports: watch::Sender<bool>,
    engine: tokio::sync::oneshot::Receiver<()>,
}

impl Voice {
    /// Binds the SIP sockets and starts the engine on `store` and `records`.
    pub async fn start(
        cfg: &SipConfig,
        store: Arc<dyn BindingStore>,
        records: Arc<dyn RecordStore>,
        media: MediaRelay,
    ) -> Result<Voice, VoiceError> {
        Self::start_with(cfg, store, records, media, None).await
    }

    /// Like [`Voice::start`]; with `own`, the engine opens stores of its own on
    /// its thread (a Redis store does: its connections are then driven by the
    /// engine's runtime, so a route lookup or a record write never wakes another
    /// thread; measured at about a fifth of the CPU per call). If `own` fails,
    /// the engine uses `store` and `records`. Pass `None` for a memory store,
    /// whose data the engine must share.
    pub async fn start_with(
        cfg: &SipConfig,
        store: Arc<dyn BindingStore>,
        records: Arc<dyn RecordStore>,
        media: MediaRelay,
        own: Option<EngineStores>,
    ) -> Result<Voice, VoiceError> {
        let listen = cfg.listen_addrs().map_err(|e| VoiceError::Config {
            field: e.field_name().unwrap_or("sip.listen").to_owned(),
            message: e.to_string(),
        })?;
        let trunks = cfg
            .trunks
            .iter()
            .enumerate()
            .map(|(i, t)| {
                trunk::Trunk::new(t).ok_or_else(|| VoiceError::Config {
                    field: format!("sip.trunks[{i}]"),
                    message: "invalid trunk".into(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if trunks.is_empty() {
            tracing::warn!("sip: no [[sip.trunks]] configured: every SIP request is refused");
        }
        let per_min = std::num::NonZeroU32::new(cfg.calls_per_caller_per_min).ok_or_else(|| {
            VoiceError::Config {
                field: "sip.calls_per_caller_per_min".into(),
                message: "must be at least 1".into(),
            }
        })?;
        let ivr = Arc::new(ivr_policy::IvrPolicy::from_config(&cfg.ivr)?);
        let (stop_tx, stop_rx) = watch::channel(false);
        let (in_tx, in_rx) = mpsc::channel(8192);
        let tls = match &cfg.tls {
            Some(t) if listen.iter().any(|l| l.tls) => {
                let config =
                    crate::tls::server_config(&t.cert, &t.key).map_err(|e| VoiceError::Config {
                        field: "sip.tls".into(),
                        message: e.0,
                    })?;
                Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
            }
            _ => None,
        };
        let (tstop_tx, tstop_rx) = watch::channel(false);
        let (rec_tx, rec_rx) = mpsc::unbounded_channel();
        let limiter = governor::RateLimiter::keyed(governor::Quota::per_minute(per_min));
        let (host, reject_untrusted) = (cfg.host.clone(), cfg.unknown_source == "reject");
        let (no_binding_status, no_answer, max_call, drain) = (
            cfg.no_binding_status,
            Duration::from_secs(cfg.no_answer_timeout_s),
            Duration::from_secs(cfg.max_call_duration_s),
            Duration::from_secs(cfg.drain_timeout_s),
        );
        // The engine, its sockets and its route lookups live on one thread with its
        // own single-threaded runtime: a SIP message never wakes another thread on
        // its way from the socket to the call state (measured: most of the CPU per
        // call on the shared multi-threaded runtime went to thread hand-offs).
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("sip-engine".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(VoiceError::Io(e)));
                        return;
                    }
                };
                rt.block_on(async move {
                    let (store, records) = match own.map(|open| open()) {
                        Some(Ok(own)) => own,
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "sip: engine uses the shared store");
                            (store, records)
                        }
                        None => (store, records),
                    };
                    // Records are written on this thread too; the engine's end
                    // closes their queue and the writer finishes it below.
                    let writer = tokio::spawn(records::run(rec_rx, store.clone(), records));
                    let transports =
                        match transport::Transports::bind(&listen, tls, in_tx, tstop_rx).await {
                            Ok(t) => t,
                            Err(e) => {
                                let _ = ready_tx.send(Err(e));
                                return;
                            }
                        };
                    let settings = Arc::new(VoiceSettings {
                        udp: transports.udp_addrs.first().copied(),
                        tcp: transports.tcp_addrs.first().copied(),
                        tls: transports.tls_addrs.first().copied(),
                        host,
                        reject_untrusted,
                        no_binding_status,
                        no_answer_timeout: no_answer,
                        max_call_duration: max_call,
                        drain_timeout: drain,
                    });
                    let addrs = (
                        transports.udp_addrs.clone(),
                        transports.tcp_addrs.clone(),
                        transports.tls_addrs.clone(),
                    );
                    let (int_tx, int_rx) = mpsc::unbounded_channel();
                    let engine = engine::Engine::new(
                        settings,
                        trunks,
                        transports,
                        router::CallRouter::with_ivr(store, ivr),
                        media,
                        rec_tx,
                        int_tx,
                        limiter,
                    );
                    let _ = ready_tx.send(Ok(addrs));
                    engine.run(in_rx, int_rx, stop_rx).await;
                    let _ = writer.await;
                    // Let the last responses and BYEs leave before the sockets close.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                });
                let _ = done_tx.send(());
            })?;
        let (udp_addrs, tcp_addrs, tls_addrs) =
            ready_rx.await.map_err(|_| VoiceError::Config {
                field: "sip".into(),
                message: "the SIP engine thread ended during start-up".into(),
            })??;
        Ok(Voice {
            udp_addrs,
            tcp_addrs,
            tls_addrs,
            stop: stop_tx,
            stop_transports: tstop_tx,
            engine: done_rx,
        })
    }

    /// Stops taking calls (new INVITEs get 503), lets live calls finish within the
    /// drain timeout, ends the rest, and waits for their records to be written.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.engine.await;
        // The engine thread ends after its record writer wrote the last records.
        let _ = self.stop_transports.send(true);
    }
}
