//! The port pool: which RTP/RTCP port pairs (even RTP port, RTCP = RTP + 1) are
//! free, and the sockets bound on them. A pair the forwarding worker is done with
//! stays *bound and registered in that worker's epoll set* (up to [`MAX_CACHED`]
//! pairs over all workers), parked: the worker reads and drops whatever still
//! arrives on it. The next call the same worker takes reuses it without
//! `socket`/`bind`/`close` and without `epoll_ctl` (four system calls and a kernel
//! socket allocation per socket, and two `epoll_ctl`s: measured at about a tenth
//! of the CPU of a call's set-up). Pairs are handed out least recently released
//! first, so late packets of an ended call have had the longest time to stop; a
//! pair parked for less than [`QUIET`] is taken only when no unbound port is left
//! (and is then drained once more before its new call reads it). The pool's lock is taken on allocation and release only, never per
//! packet.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::MediaError;

/// Most released pairs kept bound for reuse (two descriptors each), over all
/// workers; past it a released pair's sockets are closed. Lower when the process
/// may open few descriptors: see [`max_cached`].
pub(super) const MAX_CACHED: usize = 4096;

/// Parked pairs allowed under a descriptor limit of `nofile`: at most a
/// sixteenth of it (an eighth in descriptors), so live calls keep the rest. With
/// 20,000 descriptors the full 4,096 pairs (8,192 descriptors) held 41 % of the
/// budget, and at 7,500 calls/s (15,600 descriptors live) new calls failed with
/// "Too many open files".
pub(super) fn max_cached(nofile: u64) -> usize {
    usize::try_from(nofile / 16).map_or(MAX_CACHED, |n| n.min(MAX_CACHED))
}

/// Raises the process's soft limit on open descriptors to its hard limit (every
/// call holds four media sockets; service managers often start processes at a
/// soft 1,024 under a far higher hard limit, which would fail calls past about
/// 250), and returns the limit now in force.
pub(super) fn raise_nofile_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1024;
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            tracing::info!(
                from = lim.rlim_cur,
                to = lim.rlim_max,
                "media: raised the open-files limit"
            );
            return lim.rlim_max;
        }
    }
    lim.rlim_cur
}

/// A pair parked for less than this may still hold its previous call's packets
/// that its worker has not read yet (the worker looks at its sockets at least
/// every 100 ms): the worker drains it before the new call reads it.
pub(super) const QUIET: Duration = Duration::from_millis(250);

/// Free RTP ports (even; RTCP is the next odd port).
#[derive(Debug)]
pub(super) struct PortPool {
    free: Mutex<Free>,
    /// Most pairs parked over all workers ([`max_cached`] of the descriptor limit
    /// when the pool was made).
    max_cached: usize,
}

#[derive(Debug, Default)]
struct Free {
    /// Per worker: released pairs still bound and in that worker's epoll set,
    /// oldest first.
    parked: Vec<VecDeque<LegSockets>>,
    /// Ports without sockets, oldest first.
    ports: VecDeque<u16>,
}

/// A leg's two bound, non-blocking sockets.
#[derive(Debug)]
pub(super) struct LegSockets {
    pub port: u16,
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
    /// Parked since (bound for an earlier call and still in the epoll set of the
    /// worker it came back from); `None` for a pair bound now.
    pub parked: Option<Instant>,
}

impl PortPool {
    /// Every even port of `lo..=hi` whose odd neighbour is also in range, for
    /// `workers` forwarding workers, in a process that may open `nofile`
    /// descriptors ([`raise_nofile_limit`]).
    pub fn new(lo: u16, hi: u16, workers: usize, nofile: u64) -> PortPool {
        let first = lo.saturating_add(lo % 2);
        let ports: VecDeque<u16> = (first..hi).step_by(2).collect();
        // Two descriptors a leg, two legs a call; keep 1,000 for SIP, Redis, the API.
        let calls_by_ports = ports.len() / 2;
        let calls_by_nofile =
            usize::try_from(nofile.saturating_sub(1000) / 4).unwrap_or(usize::MAX);
        if calls_by_nofile < calls_by_ports {
            tracing::warn!(
                open_files_limit = nofile,
                calls = calls_by_nofile,
                calls_by_ports,
                "media: the open-files limit holds fewer calls than the port range; \
                 raise it (ulimit -n, LimitNOFILE=) or calls past it fail with 503"
            );
        }
        PortPool {
            free: Mutex::new(Free {
                parked: (0..workers.max(1)).map(|_| VecDeque::new()).collect(),
                ports,
            }),
            max_cached: max_cached(nofile),
        }
    }

    pub fn free_pairs(&self) -> usize {
        self.free
            .lock()
            .map(|f| f.parked.iter().map(VecDeque::len).sum::<usize>() + f.ports.len())
            .unwrap_or(0)
    }

    /// A pair on `ip` for worker `worker`: one parked with that worker if there is
    /// one, else a port from the pool bound now, else (ports exhausted) a pair
    /// parked with another worker, closed and bound again. Ports that cannot be
    /// bound (another process holds them) go to the back of the pool and the next
    /// one is tried.
    pub fn bind(&self, ip: IpAddr, worker: usize) -> Result<LegSockets, MediaError> {
        let mut tries = {
            let mut free = self.free.lock().map_err(|_| MediaError::PortsExhausted)?;
            // A pair parked for less than QUIET would need a drain by the worker
            // (a system call per socket); while unbound ports remain, bind one of
            // those instead, so the parked set grows until its oldest pair is quiet.
            let fresh_left = !free.ports.is_empty();
            if let Some(q) = free.parked.get_mut(worker) {
                let quiet = q
                    .front()
                    .and_then(|s| s.parked)
                    .is_none_or(|since| since.elapsed() >= QUIET);
                if quiet || !fresh_left {
                    if let Some(s) = q.pop_front() {
                        return Ok(s);
                    }
                }
            }
            if free.ports.is_empty() {
                // Closing takes the sockets out of the other worker's epoll set.
                let stolen = free.parked.iter_mut().find_map(VecDeque::pop_front);
                if let Some(s) = stolen {
                    let port = s.port;
                    drop(s);
                    free.ports.push_back(port);
                }
            }
            free.ports.len()
        };
        let mut failed = None;
        while tries > 0 {
            tries -= 1;
            let port = {
                let mut free = self.free.lock().map_err(|_| MediaError::PortsExhausted)?;
                match free.ports.pop_front() {
                    Some(p) => p,
                    None => break,
                }
            };
            match bind_pair(ip, port) {
                Ok(s) => return Ok(s),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => self.release(port),
                Err(e) => {
                    // Out of descriptors or socket memory: no fresh pair now.
                    self.release(port);
                    failed = Some(e);
                    break;
                }
            }
        }
        // No fresh pair could be bound: this worker's parked pair after all,
        // however recently parked (the worker drains it); out of descriptors,
        // another worker's, closed (two descriptors back) and bound again.
        let (parked, stolen) = {
            let mut free = self.free.lock().map_err(|_| MediaError::PortsExhausted)?;
            match free.parked.get_mut(worker).and_then(VecDeque::pop_front) {
                Some(s) => (Some(s), None),
                None if failed.is_some() => {
                    (None, free.parked.iter_mut().find_map(VecDeque::pop_front))
                }
                None => (None, None),
            }
        };
        if let Some(s) = stolen {
            let port = s.port;
            drop(s);
            return bind_pair(ip, port).map_err(|e| {
                self.release(port);
                MediaError::Io(e)
            });
        }
        match (parked, failed) {
            (Some(s), _) => Ok(s),
            (None, Some(e)) => Err(MediaError::Io(e)),
            (None, None) => Err(MediaError::PortsExhausted),
        }
    }

    /// Returns a port whose sockets are closed.
    pub fn release(&self, port: u16) {
        if let Ok(mut free) = self.free.lock() {
            free.ports.push_back(port);
        }
    }

    /// Returns a pair from worker `worker`, still in its epoll set: parked there
    /// while fewer than [`MAX_CACHED`] pairs are parked, else closed (which takes
    /// it out of the epoll set).
    pub fn park(&self, mut sockets: LegSockets, worker: usize) {
        if let Ok(mut free) = self.free.lock() {
            let parked: usize = free.parked.iter().map(VecDeque::len).sum();
            match free.parked.get_mut(worker) {
                Some(q) if parked < self.max_cached => {
                    sockets.parked = Some(Instant::now());
                    q.push_back(sockets);
                }
                _ => {
                    let port = sockets.port;
                    drop(sockets);
                    free.ports.push_back(port);
                }
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
        parked: None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_parked_cache_leaves_live_calls_most_descriptors() {
        assert_eq!(max_cached(1024), 64);
        assert_eq!(max_cached(20_000), 1250);
        assert_eq!(max_cached(65_536), MAX_CACHED);
        assert_eq!(max_cached(u64::MAX), MAX_CACHED);
    }

    #[test]
    fn pairs_are_even_and_in_range() {
        let p = PortPool::new(41001, 41006, 1, 65_536);
        assert_eq!(p.free_pairs(), 2); // 41002/3, 41004/5
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let a = p.bind(ip, 0).unwrap();
        assert_eq!(a.port % 2, 0);
        let b = p.bind(ip, 0).unwrap();
        assert!(matches!(p.bind(ip, 0), Err(MediaError::PortsExhausted)));
        let port = a.port;
        drop(a);
        p.release(port);
        let c = p.bind(ip, 0).unwrap();
        assert_eq!(c.port, port);
        assert_ne!(b.port, c.port);
    }

    #[test]
    fn a_parked_pair_comes_back_bound_to_its_own_worker() {
        let p = PortPool::new(41011, 41016, 2, 65_536);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let a = p.bind(ip, 1).unwrap();
        assert!(a.parked.is_none());
        let (port, addr) = (a.port, a.rtp.local_addr().unwrap());
        p.park(a, 1);
        assert_eq!(p.free_pairs(), 2);
        // Worker 0 gets a fresh port; worker 1 its parked pair, sockets and all.
        let other = p.bind(ip, 0).unwrap();
        assert_ne!(other.port, port);
        let again = p.bind(ip, 1).unwrap();
        assert_eq!(again.port, port);
        assert!(again.parked.is_some());
        assert_eq!(again.rtp.local_addr().unwrap(), addr);
    }

    #[test]
    fn a_just_parked_pair_waits_while_unbound_ports_remain() {
        let p = PortPool::new(41031, 41036, 1, 65_536); // two pairs
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let a = p.bind(ip, 0).unwrap();
        let port = a.port;
        p.park(a, 0);
        // Parked a moment ago: it may still receive its call's late packets, so
        // the free port is bound instead (no drain needed)...
        let fresh = p.bind(ip, 0).unwrap();
        assert_ne!(fresh.port, port);
        assert!(fresh.parked.is_none());
        // ...and with none left, the parked pair is used (the worker drains it).
        let reused = p.bind(ip, 0).unwrap();
        assert_eq!(reused.port, port);
        assert!(reused.parked.is_some());
    }

    #[test]
    fn with_ports_exhausted_another_workers_parked_pair_is_bound_again() {
        let p = PortPool::new(41021, 41024, 2, 65_536); // one pair
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let a = p.bind(ip, 0).unwrap();
        let port = a.port;
        p.park(a, 0);
        let b = p.bind(ip, 1).unwrap();
        assert_eq!((b.port, b.parked), (port, None));
        assert!(matches!(p.bind(ip, 0), Err(MediaError::PortsExhausted)));
    }
}
