//! Batched UDP for the engines: one `recvmmsg` takes every SIP datagram already
//! queued on a socket (up to [`RECV_BATCH`]), one `sendmmsg` sends every datagram
//! a pass produced for a socket. A busy engine handles several messages per
//! wake-up; this makes that one system call per direction instead of one per
//! message. Address conversion is the media relay's (`media::sys`).

use std::io;
use std::mem::{size_of, zeroed};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use tokio::io::Interest;
use tokio::net::UdpSocket;

use crate::media::sys::{self, to_socket_addr, RawAddr};

/// Datagrams read per `recvmmsg`.
pub const RECV_BATCH: usize = 16;
/// Datagrams sent per `sendmmsg`.
const SEND_BATCH: usize = 32;
/// Largest UDP payload (IPv4: 65,507; a buffer this size never truncates).
const MAX_DATAGRAM: usize = 65_535;

/// Receive buffers and kernel headers (boxed: the headers point into them).
pub struct RecvBatch {
    bufs: Vec<u8>,
    addrs: Box<[libc::sockaddr_storage; RECV_BATCH]>,
    /// Read only by the kernel, through the headers.
    _iov: Box<[libc::iovec; RECV_BATCH]>,
    hdrs: Box<[libc::mmsghdr; RECV_BATCH]>,
    received: usize,
}

// SAFETY: the raw pointers in the headers point only into the batch's own heap
// storage (never moved or resized), so moving the batch between threads is sound.
unsafe impl Send for RecvBatch {}

impl Default for RecvBatch {
    fn default() -> Self {
        // The buffers are zeroed pages the kernel maps on first write: a datagram
        // costs only the pages it fills.
        let mut bufs = vec![0u8; RECV_BATCH * MAX_DATAGRAM];
        // SAFETY: these kernel structs hold only integers and raw pointers, for
        // which all-zero is valid; the pointers are set just below.
        let mut addrs: Box<[libc::sockaddr_storage; RECV_BATCH]> = Box::new(unsafe { zeroed() });
        let mut iov: Box<[libc::iovec; RECV_BATCH]> = Box::new(unsafe { zeroed() });
        let mut hdrs: Box<[libc::mmsghdr; RECV_BATCH]> = Box::new(unsafe { zeroed() });
        for (i, chunk) in bufs.chunks_exact_mut(MAX_DATAGRAM).enumerate() {
            iov[i] = libc::iovec {
                iov_base: chunk.as_mut_ptr().cast(),
                iov_len: MAX_DATAGRAM,
            };
            let iov_ptr: *mut libc::iovec = &mut iov[i];
            let addr_ptr: *mut libc::sockaddr_storage = &mut addrs[i];
            let m = &mut hdrs[i].msg_hdr;
            m.msg_iov = iov_ptr;
            m.msg_iovlen = 1;
            m.msg_name = addr_ptr.cast();
        }
        RecvBatch {
            bufs,
            addrs,
            _iov: iov,
            hdrs,
            received: 0,
        }
    }
}

impl RecvBatch {
    /// Reads what `sock` has queued, without waiting; returns how many datagrams.
    /// Errors (none queued included) read as 0; tokio's readiness is cleared only
    /// when the kernel says there is nothing left.
    pub fn recv(&mut self, sock: &UdpSocket) -> usize {
        for h in self.hdrs.iter_mut() {
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        let fd = sock.as_raw_fd();
        let hdrs = self.hdrs.as_mut_ptr();
        let n = sock.try_io(Interest::READABLE, || {
            // SAFETY: `hdrs` points to RECV_BATCH headers whose buffers and
            // addresses live in this batch.
            let n =
                unsafe { sys::recvmmsg(fd, hdrs, RECV_BATCH as libc::c_uint, libc::MSG_DONTWAIT) };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        });
        self.received = n.unwrap_or(0);
        self.received
    }

    /// Datagram `i` of the last [`RecvBatch::recv`] and its source.
    pub fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        if i >= self.received {
            return None;
        }
        let h = self.hdrs.get(i)?;
        let len = (h.msg_len as usize).min(MAX_DATAGRAM);
        let src = to_socket_addr(self.addrs.get(i)?)?;
        let start = i * MAX_DATAGRAM;
        Some((self.bufs.get(start..start + len)?, src))
    }
}

/// Kernel headers for one `sendmmsg` (plain data; pointers set per call).
pub struct SendBatch {
    addrs: Box<[libc::sockaddr_storage; SEND_BATCH]>,
    iov: Box<[libc::iovec; SEND_BATCH]>,
    hdrs: Box<[libc::mmsghdr; SEND_BATCH]>,
}

// SAFETY: as for RecvBatch; between calls the pointers are not used.
unsafe impl Send for SendBatch {}

impl Default for SendBatch {
    fn default() -> Self {
        // SAFETY: integers and raw pointers only; all-zero is valid.
        unsafe {
            SendBatch {
                addrs: Box::new(zeroed()),
                iov: Box::new(zeroed()),
                hdrs: Box::new(zeroed()),
            }
        }
    }
}

impl SendBatch {
    /// Sends every datagram of `msgs` from `sock`, [`SEND_BATCH`] per system call;
    /// returns how many could not be sent (a full socket buffer, an unreachable
    /// destination), each skipped so that the rest still go.
    pub fn send<'a>(
        &mut self,
        sock: &UdpSocket,
        msgs: impl IntoIterator<Item = (SocketAddr, &'a [u8])>,
    ) -> usize {
        let mut failed = 0;
        let mut it = msgs.into_iter().peekable();
        while it.peek().is_some() {
            let mut q = 0;
            for (to, payload) in it.by_ref().take(SEND_BATCH) {
                let raw = RawAddr::new(to);
                let (storage, len) = raw.parts();
                self.addrs[q] = *storage;
                self.iov[q] = libc::iovec {
                    iov_base: payload.as_ptr().cast_mut().cast(),
                    iov_len: payload.len(),
                };
                let iov_ptr: *mut libc::iovec = &mut self.iov[q];
                let addr_ptr: *mut libc::sockaddr_storage = &mut self.addrs[q];
                let m = &mut self.hdrs[q].msg_hdr;
                m.msg_iov = iov_ptr;
                m.msg_iovlen = 1;
                m.msg_name = addr_ptr.cast();
                m.msg_namelen = len;
                q += 1;
            }
            failed += self.flush(sock, q);
        }
        failed
    }

    /// Sends headers `0..q`; a datagram the kernel refuses is skipped.
    fn flush(&mut self, sock: &UdpSocket, q: usize) -> usize {
        let fd = sock.as_raw_fd();
        let mut sent = 0;
        let mut failed = 0;
        while sent < q {
            // SAFETY: headers sent..q were set up by `send` and point to payloads
            // that outlive this call.
            let hdrs = unsafe { self.hdrs.as_mut_ptr().add(sent) };
            let r = sock.try_io(Interest::WRITABLE, || {
                // SAFETY: as above; q - sent headers follow `hdrs`.
                let n = unsafe {
                    sys::sendmmsg(fd, hdrs, (q - sent) as libc::c_uint, libc::MSG_DONTWAIT)
                };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            match r {
                Ok(n) if n > 0 => sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                _ => {
                    sent += 1;
                    failed += 1;
                }
            }
        }
        failed
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_batch_reads_and_sends_every_datagram_with_its_address() {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        let payloads: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 100 + usize::from(i)]).collect();
        let mut send = SendBatch::default();
        a.writable().await.unwrap();
        let failed = send.send(&a, payloads.iter().map(|p| (b_addr, p.as_slice())));
        assert_eq!(failed, 0);
        let mut recv = RecvBatch::default();
        let mut got = Vec::new();
        while got.len() < payloads.len() {
            b.readable().await.unwrap();
            let n = recv.recv(&b);
            for i in 0..n {
                let (data, src) = recv.get(i).unwrap();
                assert_eq!(src, a_addr);
                got.push(data.to_vec());
            }
        }
        assert_eq!(got, payloads, "every datagram, in order, whole");
        // Nothing left: a read returns none (and clears readiness).
        assert_eq!(recv.recv(&b), 0);
        assert!(recv.get(0).is_none());
    }
}
