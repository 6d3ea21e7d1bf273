//! The port pool: which RTP/RTCP port pairs (even RTP port, RTCP = RTP + 1) are
//! free, and binding a leg's two sockets. Ports go back to the pool only after the
//! forwarding worker has closed the sockets, so a freed pair can be bound at once.
//! The pool's lock is taken on allocation and release only, never per packet.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Mutex;

use super::MediaError;

/// Free RTP ports (even; RTCP is the next odd port).
#[derive(Debug)]
pub(super) struct PortPool {
    free: Mutex<VecDeque<u16>>,
}

/// A leg's two bound, non-blocking sockets.
#[derive(Debug)]
pub(super) struct LegSockets {
    pub port: u16,
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
}

impl PortPool {
    /// Every even port of `lo..=hi` whose odd neighbour is also in range.
    pub fn new(lo: u16, hi: u16) -> PortPool {
        let first = lo.saturating_add(lo % 2);
        let free = (first..hi).step_by(2).collect();
        PortPool {
            free: Mutex::new(free),
        }
    }

    pub fn free_pairs(&self) -> usize {
        self.free.lock().map(|f| f.len()).unwrap_or(0)
    }

    /// Binds a pair on `ip` from the pool. Pairs that cannot be bound (another
    /// process holds them) go to the back of the pool and the next one is tried.
    pub fn bind(&self, ip: IpAddr) -> Result<LegSockets, MediaError> {
        let mut tries = self.free_pairs();
        while tries > 0 {
            tries -= 1;
            let port = {
                let mut free = self.free.lock().map_err(|_| MediaError::PortsExhausted)?;
                free.pop_front().ok_or(MediaError::PortsExhausted)?
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

    pub fn release(&self, port: u16) {
        if let Ok(mut free) = self.free.lock() {
            free.push_back(port);
        }
    }
}

fn bind_pair(ip: IpAddr, port: u16) -> io::Result<LegSockets> {
    let rtp = UdpSocket::bind(SocketAddr::new(ip, port))?;
    let rtcp = UdpSocket::bind(SocketAddr::new(ip, port.wrapping_add(1)))?;
    rtp.set_nonblocking(true)?;
    rtcp.set_nonblocking(true)?;
    Ok(LegSockets { port, rtp, rtcp })
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
}
