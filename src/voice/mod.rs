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
//! - [`engine`]: one task per engine thread owning its transaction layer, live
//!   calls and timers.
//! - [`shard`]: which engine thread owns a message (by Call-ID); `[sip] engines`
//!   threads, one per CPU up to 4 by default.
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
pub mod shard;
pub mod transport;
pub mod trunk;
mod udp_batch;

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
    /// Most live transactions per engine (`sip.max_transactions`).
    pub max_transactions: usize,
    /// [`VoiceSettings::local`] for UDP, TCP and TLS, formatted once (every
    /// message we build writes it); set by [`VoiceSettings::refresh_local`].
    local: [String; 3],
}

impl VoiceSettings {
    /// `host:port` we put in Via and Contact for a leg on `transport`.
    pub fn local(&self, transport: Transport) -> &str {
        let i = match transport {
            Transport::Tls => 2,
            Transport::Tcp => 1,
            _ => 0,
        };
        self.local.get(i).map_or("127.0.0.1:5060", String::as_str)
    }

    /// Formats [`VoiceSettings::local`] again after the addresses changed.
    pub fn refresh_local(&mut self) {
        self.local = [Transport::Udp, Transport::Tcp, Transport::Tls].map(|t| self.format_local(t));
    }

    fn format_local(&self, transport: Transport) -> String {
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

/// Opens the stores an engine uses on its own thread (see [`Voice::start_with`]);
/// called once per engine thread.
pub type EngineStores =
    Arc<dyn Fn() -> Result<(Arc<dyn BindingStore>, Arc<dyn RecordStore>), String> + Send + Sync>;

/// What every engine shares.
#[derive(Clone)]
struct Common {
    trunks: Arc<Vec<trunk::Trunk>>,
    media: MediaRelay,
    limiter: Arc<governor::DefaultKeyedRateLimiter<u64>>,
    ivr: Arc<ivr_policy::IvrPolicy>,
    store: Arc<dyn BindingStore>,
    records: Arc<dyn RecordStore>,
    own: Option<EngineStores>,
    stop: watch::Receiver<bool>,
    peers: Arc<[mpsc::Sender<transport::Inbound>]>,
    shared: Arc<shard::Shared>,
}

fn engine_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// One engine shard on the current thread's runtime: opens its stores (or uses
/// the shared ones), runs the engine until it has drained, writes the last
/// records, waits for `after` (shard 0: the other shards), and lets the last
/// responses and BYEs leave.
async fn run_shard(
    index: usize,
    c: Common,
    settings: Arc<VoiceSettings>,
    transports: transport::Transports,
    queue: mpsc::Receiver<transport::Inbound>,
    after: impl std::future::Future<Output = ()>,
) {
    let (store, records) = match c.own.as_ref().map(|open| open()) {
        Some(Ok(own)) => own,
        Some(Err(e)) => {
            tracing::warn!(error = %e, shard = index, "sip: engine uses the shared store");
            (c.store.clone(), c.records.clone())
        }
        None => (c.store.clone(), c.records.clone()),
    };
    // The engine's end closes the record queue; the writer finishes it below.
    let (rec_tx, rec_rx) = mpsc::unbounded_channel();
    let writer = tokio::spawn(records::run(rec_rx, store.clone(), records));
    let (int_tx, int_rx) = mpsc::unbounded_channel();
    let engine = engine::Engine::new(
        settings,
        c.trunks,
        transports,
        router::CallRouter::with_ivr(store, c.ivr),
        c.media,
        rec_tx,
        int_tx,
        c.limiter,
        shard::Shards::new(index, c.peers, c.shared),
    );
    engine.run(queue, int_rx, c.stop).await;
    let _ = writer.await;
    after.await;
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// A running voice relay.
#[derive(Debug)]
pub struct Voice {
    /// Bound UDP addresses.
    pub udp_addrs: Vec<SocketAddr>,
    /// Bound TCP addresses.
    pub tcp_addrs: Vec<SocketAddr>,
    /// Bound TLS addresses.
    pub tls_addrs: Vec<SocketAddr>,
    /// Engine sockets (`sip.engine_port_base`), engine 1 first.
    pub engine_udp_addrs: Vec<SocketAddr>,
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
        let engines = cfg.engine_count().clamp(1, shard::MAX_ENGINES);
        // Shard 0's queue is also the transports' inbound queue.
        let mut peers = Vec::with_capacity(engines);
        let mut queues = Vec::with_capacity(engines);
        for _ in 0..engines {
            let (tx, rx) = mpsc::channel(8192);
            peers.push(tx);
            queues.push(rx);
        }
        let in_tx = peers[0].clone();
        let common = Common {
            trunks: Arc::new(trunks),
            media,
            limiter: Arc::new(governor::RateLimiter::keyed(governor::Quota::per_minute(
                per_min,
            ))),
            ivr,
            store,
            records,
            own,
            stop: stop_rx,
            peers: Arc::from(peers),
            shared: Arc::new(shard::Shared::new(
                engines,
                Duration::from_secs(cfg.no_answer_timeout_s + 32),
                f64::from(cfg.spread_from_pct) / 100.0,
            )),
        };
        let (host, reject_untrusted) = (cfg.host.clone(), cfg.unknown_source == "reject");
        let engine_port_base = cfg.engine_port_base;
        let max_transactions = cfg.max_transactions as usize;
        let (no_binding_status, no_answer, max_call, drain) = (
            cfg.no_binding_status,
            Duration::from_secs(cfg.no_answer_timeout_s),
            Duration::from_secs(cfg.max_call_duration_s),
            Duration::from_secs(cfg.drain_timeout_s),
        );
        // Each engine, its route lookups and its record writer live on one thread
        // with its own single-threaded runtime: a SIP message of a call wakes at
        // most the thread of the shard that owns the call (measured: most of the
        // CPU per call on the shared multi-threaded runtime went to thread
        // hand-offs). Shard 0 also owns the sockets and reads them.
        let mut queues = queues.into_iter();
        let q0 = queues.next().ok_or_else(|| VoiceError::Config {
            field: "sip.engines".into(),
            message: "no engine".into(),
        })?;
        // Shard 0 ends last: the others hold these senders until they end.
        let (others_tx, mut others_rx) = mpsc::channel::<()>(1);
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let c0 = common.clone();
        std::thread::Builder::new()
            .name("sip-engine".into())
            .spawn(move || {
                let rt = match engine_runtime() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(VoiceError::Io(e)));
                        return;
                    }
                };
                rt.block_on(async move {
                    let tls_out = c0
                        .trunks
                        .iter()
                        .filter_map(|t| t.tls.clone().map(|o| (t.gateway, o)))
                        .collect();
                    let mut transports =
                        match transport::Transports::bind(&listen, tls, in_tx, tstop_rx).await {
                            Ok(t) => t,
                            Err(e) => {
                                let _ = ready_tx.send(Err(e));
                                return;
                            }
                        };
                    transports.set_tls_out(tls_out);
                    let mut settings = VoiceSettings {
                        udp: transports.udp_addrs.first().copied(),
                        tcp: transports.tcp_addrs.first().copied(),
                        tls: transports.tls_addrs.first().copied(),
                        host,
                        reject_untrusted,
                        no_binding_status,
                        no_answer_timeout: no_answer,
                        max_call_duration: max_call,
                        drain_timeout: drain,
                        max_transactions,
                        local: Default::default(),
                    };
                    settings.refresh_local();
                    let settings = Arc::new(settings);
                    let _ = ready_tx.send(Ok((transports.clone(), settings.clone())));
                    let others = async move { while others_rx.recv().await.is_some() {} };
                    run_shard(0, c0, settings, transports, q0, others).await;
                });
                let _ = done_tx.send(());
            })?;
        let (transports, settings) = ready_rx.await.map_err(|_| VoiceError::Config {
            field: "sip".into(),
            message: "the SIP engine thread ended during start-up".into(),
        })??;
        // Engine sockets, bound before any engine thread starts so that a port in
        // use fails the start-up with its name.
        let mut own_socks = Vec::new();
        let mut engine_udp_addrs = Vec::new();
        if let (Some(base), Some(listen_udp)) = (engine_port_base, transports.udp_addrs.first()) {
            for k in 1..engines {
                let port = if base == 0 {
                    0
                } else {
                    base.saturating_add(k as u16 - 1)
                };
                let addr = SocketAddr::new(listen_udp.ip(), port);
                let sock = std::net::UdpSocket::bind(addr).map_err(|e| {
                    VoiceError::Bind(format!("udp:{addr} (sip.engine_port_base)"), e)
                })?;
                engine_udp_addrs.push(sock.local_addr()?);
                own_socks.push(Some(sock));
            }
        }
        own_socks.resize_with(engines.saturating_sub(1), || None);
        for ((i, queue), own) in queues.enumerate().zip(own_socks) {
            let index = i + 1;
            let (c, settings, transports) = (common.clone(), settings.clone(), transports.clone());
            let others_tx = others_tx.clone();
            std::thread::Builder::new()
                .name(format!("sip-engine-{index}"))
                .spawn(move || {
                    match engine_runtime() {
                        Ok(rt) => rt.block_on(async move {
                            let (settings, transports) = match own {
                                None => (settings, transports),
                                Some(sock) => {
                                    let addr = sock.local_addr().ok();
                                    match transports.with_own_udp(sock) {
                                        Ok(t) => {
                                            let mut s = (*settings).clone();
                                            s.udp = addr.or(s.udp);
                                            s.refresh_local();
                                            (Arc::new(s), t)
                                        }
                                        Err(e) => {
                                            tracing::error!(error = %e, shard = index,
                                                "sip: engine socket unusable; the engine uses the listen socket");
                                            (settings, transports)
                                        }
                                    }
                                }
                            };
                            run_shard(
                                index,
                                c,
                                settings,
                                transports,
                                queue,
                                std::future::ready(()),
                            )
                            .await
                        }),
                        Err(e) => {
                            tracing::error!(error = %e, shard = index, "sip: engine thread failed")
                        }
                    }
                    drop(others_tx);
                })?;
        }
        drop(others_tx);
        Ok(Voice {
            udp_addrs: transports.udp_addrs.clone(),
            tcp_addrs: transports.tcp_addrs.clone(),
            tls_addrs: transports.tls_addrs.clone(),
            engine_udp_addrs,
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
        // Shard 0's thread ends after every shard's record writer wrote the last
        // records and the other shards ended.
        let _ = self.stop_transports.send(true);
    }
}
