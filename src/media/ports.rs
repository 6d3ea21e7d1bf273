//! The port pool: which RTP/RTCP port pairs (even RTP port, RTCP = RTP + 1) are
//! free, and the sockets bound on them. A pair the forwarding worker is done with
//! comes back *with its two sockets still bound* (up to [`MAX_CACHED`] pairs), so
//! the next call takes them without `socket`/`bind`/`close` (four system calls and
//! a kernel socket allocation per socket; measured at about a tenth of the CPU of
//! a call's set-up). The worker drains whatever the previous call's peers sent
//! before it reads a reused pair for its new call. Pairs are handed out least
//! recently released first, so late packets of an ended call have had the
//! longest time to stop. The pool's lock is taken on allocation and release only,
//! never per packet.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Mutex;

use super::MediaError;

/// Most released pairs kept bound for reuse (two descriptors each); past it a
/// released pair's sockets are closed.
pub(super) const MAX_CACHED: usize = 4096;

/// Free RTP ports (even; RTCP is the next odd port).
#[derive(Debug)]
pub(super) struct PortPool {
    free: Mutex<Free>,
}

#[derive(Debug, Default)]
struct Free {
    /// Released pairs whose sockets are still bound, oldest first.
    bound: VecDeque<LegSockets>,
    /// Ports without sockets, oldest first.
    ports: VecDeque<u16>,
}

/// A leg's two bound, non-blocking sockets.
#[derive(Debug)]
pub(super) struct LegSockets {
    pub port: u16,
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
    /// Bound for an earlier call: may hold that call's late packets.
    pub reused: bool,
}

impl PortPool {
    /// Every even port of `lo..=hi` whose odd neighbour is also in range.
    pub fn new(lo: u16, hi: u16) -> PortPool {
        let first = lo.saturating_add(lo % 2);
        let ports = (first..hi).step_by(2).collect();
        PortPool {
            free: Mutex::new(Free {
                bound: VecDeque::new(),
                ports,
            }),
        }
    }

    pub fn free_pairs(&self) -> usize {
        self.free
            .lock()
            .map(|f| f.bound.len() + f.ports.len())
            .unwrap_or(0)
    }

    /// A pair on `ip`: a released one still bound if there is one, else a port
    /// from the pool bound now. Ports that cannot be bound (another process holds
    /// them) go to the back of the pool and the next one is tried.
    pub fn bind(&self, ip: IpAddr) -> Result<LegSockets, MediaError> {
        let mut tries = {
            let mut free = self.free.lock().map_err(|_| MediaError::PortsExhausted)?;
            if let Some(mut s) = free.bound.pop_front() {
                s.reused = true;
                return Ok(s);
            }
            free.ports.len()
        };
        while tries > 0 {
            tries -= 1;
            let port = {
                let mut free = self.free.lock().map_err(|_| MediaError::PortsExhausted)?;
                free.ports.pop_front().ok_or(MediaError::PortsExhausted)?
            };
            match bind_pair(ip, port) {
                Ok(s) => return Ok(s),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => self.release(port),
                Err(e) => {
                    self.release(port);
                    return Err(MediaError::Io(e));
                }
            }
        }
        Err(MediaError::PortsExhausted)
    }

    /// Returns a port whose sockets are closed.
    pub fn release(&self, port: u16) {
        if let Ok(mut free) = self.free.lock() {
            free.ports.push_back(port);
        }
    }

    /// Returns a pair with its sockets, kept bound while fewer than
    /// [`MAX_CACHED`] are.
    pub fn recycle(&self, sockets: LegSockets) {
        if let Ok(mut free) = self.free.lock() {
            if free.bound.len() < MAX_CACHED {
                free.bound.push_back(sockets);
            } else {
                let port = sockets.port;
                drop(sockets);
                free.ports.push_back(port);
            }
        }
    }
}

fn bind_pair(ip: IpAddr, port: u16) -> io::Result<LegSockets> {
    let rtp = UdpSocket::bind(SocketAddr::new(ip, port))?;
    let rtcp = UdpSocket::bind(SocketAddr::new(ip, port.wrapping_add(1)))?;
    rtp.set_nonblocking(true)?;
    rtcp.set_nonblocking(true)?;
    Ok(LegSockets {
        port,
        rtp,
        rtcp,
        reused: false,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_even_and_in_range() {
        let p = PortPool::new(41001, 41006);
        assert_eq!(p.free_pairs(), 2); // 41002/3, 41004/5
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let a = p.bind(ip).unwrap();
        assert_eq!(a.port % 2, 0);
        let b = p.bind(ip).unwrap();
        assert!(matches!(p.bind(ip), Err(MediaError::PortsExhausted)));
        let port = a.port;
        drop(a);
        p.release(port);
        let c = p.bind(ip).unwrap();
        assert_eq!(c.port, port);
        assert_ne!(b.port, c.port);
    }

    #[test]
    fn a_recycled_pair_comes_back_bound_and_marked_reused() {
        let p = PortPool::new(41011, 41016);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let a = p.bind(ip).unwrap();
        assert!(!a.reused);
        let (port, addr) = (a.port, a.rtp.local_addr().unwrap());
        p.recycle(a);
        assert_eq!(p.free_pairs(), 2);
        let again = p.bind(ip).unwrap();
        assert_eq!((again.port, again.reused), (port, true));
        assert_eq!(again.rtp.local_addr().unwrap(), addr);
    }
}
