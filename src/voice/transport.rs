//! SIP transports: UDP sockets and TCP connections. They only frame and dispatch:
//! every received message goes to the engine as an [`Inbound`], and the engine
//! sends through [`Transports::send`]. No SIP logic lives here.
//!
//! TCP: one task per connection reads with the `sip` crate's [`Framer`] (answers
//! keep-alive pings) and writes from a channel; connections are found by peer
//! address, and an outbound leg to a TCP gateway opens one on first use.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use maskline_sip::transaction::{Destination, Transport};
use maskline_sip::{Frame, Framer, Limits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio_util_lite::CancelToken;

use super::udp_batch::SendBatch;
use super::VoiceError;
use crate::config::SipListen;

/// Minimal cancellation for transport tasks (a watch channel).
mod tokio_util_lite {
    use tokio::sync::watch;

    /// Cloneable "stop now" signal.
    #[derive(Debug, Clone)]
    pub struct CancelToken(pub watch::Receiver<bool>);

    impl CancelToken {
        /// Resolves once cancelled.
        pub async fn cancelled(&mut self) {
            while !*self.0.borrow() {
                if self.0.changed().await.is_err() {
                    return;
                }
            }
        }
    }
}

pub use tokio_util_lite::CancelToken as TransportStop;

/// One received message (not yet parsed).
#[derive(Debug)]
pub struct Inbound {
    /// The bytes of one message (a datagram, or one framed TCP message).
    pub data: Vec<u8>,
    /// Who sent it.
    pub source: SocketAddr,
    /// Over what.
    pub transport: Transport,
}

type ConnMap = Arc<Mutex<HashMap<SocketAddr, mpsc::UnboundedSender<Arc<[u8]>>>>>;

/// The bound sockets and live TCP connections.
#[derive(Debug, Clone)]
pub struct Transports {
    /// UDP sockets; the first is read by the engine itself and sends (see
    /// [`Transports::with_own_udp`]).
    udp: Vec<Arc<UdpSocket>>,
    /// With an engine socket: the listen socket, which sends the responses (a
    /// caller expects them from where it sent its request).
    reply_udp: Option<Arc<UdpSocket>>,
    /// Bound UDP and TCP addresses (for Via/Contact and the start-up banner).
    pub udp_addrs: Vec<SocketAddr>,
    /// Bound TCP listener addresses.
    pub tcp_addrs: Vec<SocketAddr>,
    /// Bound TLS listener addresses.
    pub tls_addrs: Vec<SocketAddr>,
    conns: ConnMap,
    inbound: mpsc::Sender<Inbound>,
    stop: CancelToken,
    /// Gateways reached over TLS, by address.
    tls_out: Arc<HashMap<SocketAddr, super::trunk::TlsOut>>,
}

const MAX_DATAGRAM: usize = 65_535;

impl Transports {
    /// Binds every listen socket and starts the receive tasks.
    pub async fn bind(
        listen: &[SipListen],
        tls: Option<tokio_rustls::TlsAcceptor>,
        inbound: mpsc::Sender<Inbound>,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<Transports, VoiceError> {
        let stop = CancelToken(stop);
        let mut t = Transports {
            udp: Vec::new(),
            reply_udp: None,
            udp_addrs: Vec::new(),
            tcp_addrs: Vec::new(),
            tls_addrs: Vec::new(),
            conns: Arc::default(),
            inbound,
            stop,
            tls_out: Arc::default(),
        };
        for l in listen {
            if l.tls {
                let acceptor = tls.clone().ok_or_else(|| VoiceError::Config {
                    field: "sip.tls".into(),
                    message: "a tls: listen socket needs [sip.tls]".into(),
                })?;
                let listener = TcpListener::bind(l.addr)
                    .await
                    .map_err(|e| VoiceError::Bind(format!("tls:{}", l.addr), e))?;
                t.tls_addrs.push(listener.local_addr()?);
                tokio::spawn(accept_loop(listener, t.clone(), Some(acceptor)));
            } else if l.tcp {
                let listener = TcpListener::bind(l.addr)
                    .await
                    .map_err(|e| VoiceError::Bind(format!("tcp:{}", l.addr), e))?;
                t.tcp_addrs.push(listener.local_addr()?);
                tokio::spawn(accept_loop(listener, t.clone(), None));
            } else {
                let sock = UdpSocket::bind(l.addr)
                    .await
                    .map_err(|e| VoiceError::Bind(format!("udp:{}", l.addr), e))?;
                t.udp_addrs.push(sock.local_addr()?);
                set_buffers(&sock, SOCKET_BUFFER);
                let sock = Arc::new(sock);
                // The engine reads the first UDP socket itself; others get a task.
                if !t.udp.is_empty() {
                    tokio::spawn(udp_loop(sock.clone(), t.inbound.clone(), t.stop.clone()));
                }
                t.udp.push(sock);
            }
        }
        Ok(t)
    }

    /// Sets how outbound TLS legs reach each TLS gateway.
    pub fn set_tls_out(&mut self, gateways: HashMap<SocketAddr, super::trunk::TlsOut>) {
        self.tls_out = Arc::new(gateways);
    }

    /// These transports for an engine with its own UDP socket (`sip.engine_port_base`):
    /// it is read by that engine and sends its requests; responses still leave
    /// from the listen socket. Call inside the engine's runtime (the socket
    /// registers with its reactor).
    pub fn with_own_udp(&self, own: std::net::UdpSocket) -> std::io::Result<Transports> {
        own.set_nonblocking(true)?;
        let own = UdpSocket::from_std(own)?;
        set_buffers(&own, SOCKET_BUFFER);
        let mut t = self.clone();
        t.reply_udp = t.udp.first().cloned();
        match t.udp.first_mut() {
            Some(first) => *first = Arc::new(own),
            None => t.udp.push(Arc::new(own)),
        }
        Ok(t)
    }

    /// Whether this engine has a UDP socket of its own (`sip.engine_port_base`).
    pub fn has_own_udp(&self) -> bool {
        self.reply_udp.is_some()
    }

    /// The first UDP socket (read by the engine directly).
    pub fn primary_udp(&self) -> Option<Arc<UdpSocket>> {
        self.udp.first().cloned()
    }

    /// The UDP socket a message leaves from: with an engine socket, responses
    /// still go from the listen socket (a caller expects them from where it sent
    /// its request); everything else from the first socket.
    fn udp_for(&self, payload: &[u8]) -> Option<&Arc<UdpSocket>> {
        match &self.reply_udp {
            Some(listen) if payload.starts_with(b"SIP/2.0 ") => Some(listen),
            _ => self.udp.first(),
        }
    }

    /// Sends the messages of one engine pass and empties `out`: the UDP ones with
    /// one `sendmmsg` per socket ([`Transports::udp_for`]), the others one by one.
    pub fn send_all(&self, batch: &mut SendBatch, out: &mut Vec<(Destination, Arc<[u8]>)>) {
        if out.is_empty() {
            return;
        }
        let udp = |d: &Destination| d.transport == Transport::Udp;
        let mut failed = 0;
        for sock in self.reply_udp.iter().chain(self.udp.first()) {
            failed += batch.send(
                sock,
                out.iter()
                    .filter(|(d, p)| {
                        udp(d) && self.udp_for(p).is_some_and(|s| Arc::ptr_eq(s, sock))
                    })
                    .map(|(d, p)| (d.addr, &p[..])),
            );
        }
        if failed > 0 {
            metrics::counter!("maskline_sip_send_errors_total", "transport" => "udp")
                .increment(failed as u64);
            tracing::debug!(failed, "sip: udp sends failed");
        }
        for (d, p) in out.drain(..) {
            if !udp(&d) {
                self.send(d, p);
            }
        }
    }

    /// Sends one message. Failures are logged and counted (the transaction layer
    /// retransmits over UDP; a broken TCP connection ends its calls by timeout).
    pub fn send(&self, dest: Destination, payload: Arc<[u8]>) {
        match dest.transport {
            Transport::Udp => {
                let Some(sock) = self.udp_for(&payload) else {
                    return;
                };
                if let Err(e) = sock.try_send_to(&payload, dest.addr) {
                    metrics::counter!("maskline_sip_send_errors_total", "transport" => "udp")
                        .increment(1);
                    tracing::debug!(error = %e, "sip: udp send failed");
                }
            }
            _ => {
                let existing = self
                    .conns
                    .lock()
                    .ok()
                    .and_then(|m| m.get(&dest.addr).cloned());
                match existing {
                    Some(tx) if tx.send(payload.clone()).is_ok() => {}
                    // A TLS gateway of a trunk: connect (verifying its certificate).
                    _ if dest.transport == Transport::Tls => match self.tls_out.get(&dest.addr) {
                        Some(out) => {
                            tokio::spawn(connect_tls_and_send(
                                self.clone(),
                                out.clone(),
                                dest.addr,
                                payload,
                            ));
                        }
                        None => {
                            tracing::debug!(peer = %dest.addr, "sip: no TLS connection to answer on");
                        }
                    },
                    _ => {
                        tokio::spawn(connect_and_send(self.clone(), dest.addr, payload));
                    }
                }
            }
        }
    }
}

/// Receive and send buffer of SIP UDP sockets: a burst of INVITEs (or a stall of
/// the engine) must queue in the kernel, not be dropped (the kernel caps it at
/// `net.core.rmem_max`/`wmem_max`).
const SOCKET_BUFFER: libc::c_int = 4 * 1024 * 1024;

fn set_buffers(sock: &UdpSocket, bytes: libc::c_int) {
    use std::os::fd::AsRawFd;
    let fd = sock.as_raw_fd();
    let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    for opt in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
        // SAFETY: `fd` is a live socket owned by `sock`; the option value is a
        // c_int on the stack whose size is passed along.
        let ret = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&bytes as *const libc::c_int).cast(),
                len,
            )
        };
        if ret != 0 {
            tracing::debug!(opt, "sip: could not set the socket buffer size");
        }
    }
}

async fn udp_loop(sock: Arc<UdpSocket>, inbound: mpsc::Sender<Inbound>, mut stop: CancelToken) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            r = sock.recv_from(&mut buf) => match r {
                Ok((n, source)) => {
                    let data = buf.get(..n).unwrap_or_default().to_vec();
                    if inbound.send(Inbound { data, source, transport: Transport::Udp }).await.is_err() {
                        return;
                    }
                }
                // ICMP errors surface here on Linux; keep serving.
                Err(e) => tracing::trace!(error = %e, "sip: udp recv"),
            }
        }
    }
}

async fn accept_loop(listener: TcpListener, t: Transports, tls: Option<tokio_rustls::TlsAcceptor>) {
    let mut stop = t.stop.clone();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    match &tls {
                        None => { tokio::spawn(run_conn(stream, peer, Transport::Tcp, t.clone(), None)); }
                        Some(acceptor) => {
                            let (acceptor, t) = (acceptor.clone(), t.clone());
                            tokio::spawn(async move {
                                let hs = tokio::time::timeout(TLS_HANDSHAKE, acceptor.accept(stream)).await;
                                match hs {
                                    Ok(Ok(s)) => run_conn(s, peer, Transport::Tls, t, None).await,
                                    _ => tracing::debug!(peer = %peer, "sip: TLS handshake failed"),
                                }
                            });
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "sip: tcp accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }
}

async fn connect_and_send(t: Transports, addr: SocketAddr, first: Arc<[u8]>) {
    match tokio::time::timeout(std::time::Duration::from_secs(5), TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            run_conn(stream, addr, Transport::Tcp, t, Some(first)).await
        }
        Ok(Err(e)) => tracing::warn!(error = %e, peer = %addr, "sip: tcp connect failed"),
        Err(_) => tracing::warn!(peer = %addr, "sip: tcp connect timed out"),
    }
}

async fn connect_tls_and_send(
    t: Transports,
    out: super::trunk::TlsOut,
    addr: SocketAddr,
    first: Arc<[u8]>,
) {
    let connect = async {
        let stream = TcpStream::connect(addr).await?;
        let _ = stream.set_nodelay(true);
        out.connector.connect(out.name.clone(), stream).await
    };
    match tokio::time::timeout(TLS_HANDSHAKE, connect).await {
        Ok(Ok(stream)) => run_conn(stream, addr, Transport::Tls, t, Some(first)).await,
        Ok(Err(e)) => {
            metrics::counter!("maskline_sip_send_errors_total", "transport" => "tls").increment(1);
            tracing::warn!(error = %e, peer = %addr, "sip: tls connect failed");
        }
        Err(_) => tracing::warn!(peer = %addr, "sip: tls connect timed out"),
    }
}

/// Largest idle time of a TCP connection without any traffic (keep-alives count).
const TCP_IDLE: std::time::Duration = std::time::Duration::from_secs(3600);

/// How long a TLS client may take for its handshake.
const TLS_HANDSHAKE: std::time::Duration = std::time::Duration::from_secs(10);

async fn run_conn<S>(
    stream: S,
    peer: SocketAddr,
    transport: Transport,
    t: Transports,
    first: Option<Arc<[u8]>>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::unbounded_channel::<Arc<[u8]>>();
    if let Some(first) = first {
        let _ = tx.send(first);
    }
    if let Ok(mut m) = t.conns.lock() {
        m.insert(peer, tx.clone());
    }
    let writer = tokio::spawn(async move {
        while let Some(p) = rx.recv().await {
            if wr.write_all(&p).await.is_err() {
                break;
            }
        }
    });
    let mut framer = Framer::new(Limits::DEFAULT);
    let mut buf = vec![0u8; 16 * 1024];
    let mut stop = t.stop.clone();
    'read: loop {
        let n = tokio::select! {
            _ = stop.cancelled() => break,
            r = tokio::time::timeout(TCP_IDLE, rd.read(&mut buf)) => match r {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                Ok(Ok(n)) => n,
            }
        };
        if framer.push(buf.get(..n).unwrap_or_default()).is_err() {
            break;
        }
        loop {
            match framer.next_frame() {
                Ok(Some(Frame::Message(data))) => {
                    let msg = Inbound {
                        data,
                        source: peer,
                        transport,
                    };
                    if t.inbound.send(msg).await.is_err() {
                        break 'read;
                    }
                }
                Ok(Some(Frame::Ping)) => {
                    let _ = tx.send(Arc::from(&b"\r\n"[..]));
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                // A broken stream cannot be re-synchronised: close it.
                Err(_) => break 'read,
            }
        }
    }
    if let Ok(mut m) = t.conns.lock() {
        if m.get(&peer).is_some_and(|s| s.same_channel(&tx)) {
            m.remove(&peer);
        }
    }
    drop(tx);
    writer.abort();
}
