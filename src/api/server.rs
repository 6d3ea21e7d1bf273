//! The connection loop: accepts TCP (optionally TLS via tokio-rustls with the ring
//! provider), serves HTTP/1.1 and HTTP/2 on each connection with hyper-util's auto
//! builder, and on shutdown stops accepting and drains open connections gracefully
//! (in-flight requests get their answers, idle keep-alive connections close).
//!
//! Slow and silent clients are cut off ([`Limits`]): header and idle timeouts here
//! and in [`super::conn`], the body timeout in `read_body`, and a cap on open
//! connections (connections beyond it are closed at once).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::conn::{ConnState, InFlight, Watched};
use super::preface::{check_request_line, Preface, Prefixed};
use super::ApiError;

/// Longest wait for in-flight requests after shutdown is asked for.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest time a client may take for its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connection limits from `[api]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Longest time a client may take to send HTTP/1 request headers.
    pub(crate) header_timeout: Duration,
    /// Longest silence of a connection with no request in flight.
    pub(crate) idle_timeout: Duration,
    /// Most open connections.
    pub(crate) max_connections: usize,
}

/// Metric: connections closed at once because `api.max_connections` were open.
pub const METRIC_CONNECTIONS_REFUSED: &str = "maskline_http_connections_refused_total";

/// Loads a PEM certificate chain and private key into a TLS acceptor (ALPN h2 and
/// http/1.1).
pub(crate) fn tls_acceptor(cert_path: &str, key_path: &str) -> Result<TlsAcceptor, ApiError> {
    let mut config =
        crate::tls::server_config(cert_path, key_path).map_err(|e| ApiError::Tls(e.0))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Checks the first request line (answering a bad one in our error shape) within
/// `timeout`; `None` when the connection is done (or the server is stopping).
async fn preface<IO>(
    mut io: IO,
    timeout: Duration,
    stopping: &mut tokio::sync::watch::Receiver<bool>,
) -> Option<Prefixed<IO>>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let checked = tokio::select! {
        r = tokio::time::timeout(timeout, check_request_line(&mut io)) => r,
        _ = stopping.wait_for(|s| *s) => return None,
    };
    match checked {
        Ok(Preface::Serve(prefix)) => Some(Prefixed::new(prefix, io)),
        Ok(Preface::Closed | Preface::Refused) => None,
        Err(_) => {
            tracing::debug!("request line timed out");
            None
        }
    }
}

/// Runs the accept loop until `shutdown`, then drains.
pub(crate) async fn serve(
    router: Router,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ApiError> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, tls = tls.is_some(), "api listening");
    }
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    // Tells connections still before their first request line that we are stopping
    // (they hold a graceful watcher, so the drain would otherwise wait for them).
    let (stopping_tx, stopping) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            metrics::counter!(METRIC_CONNECTIONS_REFUSED).increment(1);
            tracing::debug!("connection refused: api.max_connections are open");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = Arc::new(ConnState::default());
        let stream = Watched::new(stream, state.clone(), limits.idle_timeout);
        let watcher = graceful.watcher();
        let builder = builder.clone();
        let router = router.clone();
        let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let guard = InFlight::enter(&state);
            let router = router.clone();
            async move {
                let resp = router.oneshot(req).await;
                drop(guard);
                resp
            }
        });
        let tls = tls.clone();
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let header_timeout = limits.header_timeout;
            let result = match tls {
                Some(acceptor) => {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(s)) => {
                            let Some(io) = preface(s, header_timeout, &mut stopping).await else {
                                return;
                            };
                            watcher
                                .watch(builder.serve_connection(TokioIo::new(io), service))
                                .await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "tls handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!("tls handshake timed out");
                            return;
                        }
                    }
                }
                None => {
                    let Some(io) = preface(stream, header_timeout, &mut stopping).await else {
                        return;
                    };
                    watcher
                        .watch(builder.serve_connection(TokioIo::new(io), service))
                        .await
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with error");
            }
        });
    }
    drop(listener);
    let _ = stopping_tx.send(true);
    tracing::info!("api draining connections");
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("drain timed out; closing remaining connections");
    }
    tracing::info!("api stopped");
    Ok(())
}
