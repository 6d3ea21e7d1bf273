//! Linux system calls of the forwarding path: epoll, eventfd, `recvmmsg`/`sendmmsg`
//! and socket-address conversion, wrapped so that the rest of the media code has no
//! `unsafe`. Everything here is allocation-free once set up.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Packets read or written by one `recvmmsg`/`sendmmsg` call.
pub(super) const BATCH: usize = 32;
/// Largest datagram relayed; larger ones are truncated by the kernel and dropped.
pub(super) const MAX_PACKET: usize = 2048;

// The forwarding path's system calls go through `syscall(2)`, not glibc's
// wrappers: those are thread-cancellation points and call
// `__pthread_enable_asynccancel`/`__pthread_disable_asynccancel` around every
// call (measured at 2.5 % of a busy worker's CPU). Nothing here cancels threads.

/// `recvmmsg(fd, hdrs, vlen, flags, NULL)`.
///
/// # Safety
/// `hdrs` must point to `vlen` valid, writable `mmsghdr`s and their buffers.
pub(crate) unsafe fn recvmmsg(
    fd: RawFd,
    hdrs: *mut libc::mmsghdr,
    vlen: libc::c_uint,
    flags: libc::c_int,
) -> libc::c_int {
    // SAFETY: the caller guarantees the headers; the timeout is NULL.
    unsafe {
        libc::syscall(
            libc::SYS_recvmmsg,
            fd,
            hdrs,
            vlen,
            flags,
            std::ptr::null_mut::<libc::timespec>(),
        ) as libc::c_int
    }
}

/// `sendmmsg(fd, hdrs, vlen, flags)`.
///
/// # Safety
/// `hdrs` must point to `vlen` valid `mmsghdr`s whose buffers are readable.
pub(crate) unsafe fn sendmmsg(
    fd: RawFd,
    hdrs: *mut libc::mmsghdr,
    vlen: libc::c_uint,
    flags: libc::c_int,
) -> libc::c_int {
    // SAFETY: the caller guarantees the headers.
    unsafe { libc::syscall(libc::SYS_sendmmsg, fd, hdrs, vlen, flags) as libc::c_int }
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// An epoll instance.
#[derive(Debug)]
pub(super) struct Epoll {
    fd: OwnedFd,
    events: Vec<libc::epoll_event>,
}

impl Epoll {
    pub(super) fn new(max_events: usize) -> io::Result<Epoll> {
        // SAFETY: plain syscall; the returned descriptor is owned below.
        let fd = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: fd was just returned by epoll_create1 and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Epoll {
            fd,
            events: vec![libc::epoll_event { events: 0, u64: 0 }; max_events.max(1)],
        })
    }

    /// Level-triggered readability of `fd`, reported with `token`.
    pub(super) fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        self.ctl_add(fd, token, libc::EPOLLIN as u32)
    }

    /// Edge-triggered readability of `fd`: reported once per arrival while it was
    /// drained, so the reader must read until a short batch. Saves the kernel the
    /// re-poll of every level-triggered socket on each `epoll_wait` (measured at
    /// about a tenth of the media worker's CPU in `sock_poll`/`ep_item_poll`).
    pub(super) fn add_edge(&self, fd: RawFd, token: u64) -> io::Result<()> {
        self.ctl_add(fd, token, (libc::EPOLLIN | libc::EPOLLET) as u32)
    }

    fn ctl_add(&self, fd: RawFd, token: u64, events: u32) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: ev is a valid epoll_event for the duration of the call.
        check(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) })?;
        Ok(())
    }

    /// Waits up to `timeout_ms`; returns the ready tokens' count (see [`Epoll::token`]).
    pub(super) fn wait(&mut self, timeout_ms: i32) -> io::Result<usize> {
        // SAFETY: the buffer holds events.len() entries.
        let n = unsafe {
            libc::syscall(
                libc::SYS_epoll_pwait,
                self.fd.as_raw_fd(),
                self.events.as_mut_ptr(),
                self.events.len() as libc::c_int,
                timeout_ms,
                std::ptr::null::<libc::sigset_t>(),
                0usize,
            ) as libc::c_int
        };
        match check(n) {
            Ok(n) => Ok(n as usize),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e),
        }
    }

    pub(super) fn token(&self, i: usize) -> u64 {
        self.events.get(i).map(|e| e.u64).unwrap_or(u64::MAX)
    }
}

/// An eventfd used to wake a worker when a command is queued.
#[derive(Debug)]
pub(super) struct Waker {
    fd: OwnedFd,
    /// A wake-up is written and not yet drained: further commands need none.
    pending: std::sync::atomic::AtomicBool,
}

impl Waker {
    pub(super) fn new() -> io::Result<Waker> {
        // SAFETY: plain syscall; the descriptor is owned below.
        let fd = check(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
        // SAFETY: fresh descriptor owned by nobody else.
        Ok(Waker {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            pending: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub(super) fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Wakes the worker unless a wake-up is already on its way (one `write` per
    /// worker wake-up, however many commands are queued meanwhile).
    pub(super) fn wake(&self) {
        if self.pending.swap(true, std::sync::atomic::Ordering::AcqRel) {
            return;
        }
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64; EAGAIN (counter full) is harmless.
        unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Clears the wake-up; the worker reads its command queue after this.
    pub(super) fn drain(&self) {
        self.pending
            .store(false, std::sync::atomic::Ordering::Release);
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64.
        unsafe { libc::read(self.fd.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }
}

/// A socket address in kernel form, ready to hand to `sendmmsg`.
#[derive(Clone, Copy)]
pub(crate) struct RawAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl std::fmt::Debug for RawAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match to_socket_addr(&self.storage) {
            Some(a) => write!(f, "{a}"),
            None => f.write_str("<unknown family>"),
        }
    }
}

impl RawAddr {
    pub(crate) fn new(addr: SocketAddr) -> RawAddr {
        // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
        let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
        let len = match addr {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
                unsafe { *(&mut storage as *mut libc::sockaddr_storage).cast() = sin };
                size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
                unsafe { *(&mut storage as *mut libc::sockaddr_storage).cast() = sin6 };
                size_of::<libc::sockaddr_in6>()
            }
        };
        RawAddr {
            storage,
            len: len as libc::socklen_t,
        }
    }

    /// The kernel form and its length.
    pub(crate) fn parts(&self) -> (&libc::sockaddr_storage, libc::socklen_t) {
        (&self.storage, self.len)
    }
}

/// The address in a `sockaddr_storage` filled by the kernel.
pub(crate) fn to_socket_addr(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match s.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin: &libc::sockaddr_in = unsafe { &*(s as *const libc::sockaddr_storage).cast() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6: &libc::sockaddr_in6 =
                unsafe { &*(s as *const libc::sockaddr_storage).cast() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            // Dual-stack sockets report IPv4 peers as mapped addresses.
            let ip = match ip.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(ip),
            };
            Some(SocketAddr::new(ip, u16::from_be(sin6.sin6_port)))
        }
        _ => None,
    }
}

/// Kernel headers of one batch (plain data, all-zero valid).
struct Headers {
    recv_iov: [libc::iovec; BATCH],
    recv_addr: [libc::sockaddr_storage; BATCH],
    recv_hdr: [libc::mmsghdr; BATCH],
    send_iov: [libc::iovec; BATCH],
    send_addr: [libc::sockaddr_storage; BATCH],
    send_hdr: [libc::mmsghdr; BATCH],
}

/// Pre-allocated buffers and headers for one batch: received packets are
/// filtered and rewritten in place, then sent from the same buffers.
pub(super) struct Batch {
    bufs: Box<[[u8; MAX_PACKET]]>,
    h: Box<Headers>,
    received: usize,
    queued: usize,
}

// SAFETY: the raw pointers in a batch point only into the batch's own heap
// storage (boxed, never moved), so moving the batch to another thread is sound.
unsafe impl Send for Batch {}

impl Batch {
    /// A batch; the buffers and headers are boxed so the header pointers stay valid.
    pub(super) fn new() -> Batch {
        let mut bufs = vec![[0u8; MAX_PACKET]; BATCH].into_boxed_slice();
        // SAFETY: Headers holds only integers and raw pointers, for which
        // all-zero is a valid value; the pointers are set just below.
        let mut h: Box<Headers> = Box::new(unsafe { zeroed() });
        for (i, buf) in bufs.iter_mut().enumerate() {
            let base = buf.as_mut_ptr();
            h.recv_iov[i] = libc::iovec {
                iov_base: base.cast(),
                iov_len: MAX_PACKET,
            };
            h.send_iov[i] = libc::iovec {
                iov_base: base.cast(),
                iov_len: 0,
            };
            let recv_iov: *mut libc::iovec = &mut h.recv_iov[i];
            let recv_addr: *mut libc::sockaddr_storage = &mut h.recv_addr[i];
            let send_iov: *mut libc::iovec = &mut h.send_iov[i];
            let send_addr: *mut libc::sockaddr_storage = &mut h.send_addr[i];
            let m = &mut h.recv_hdr[i].msg_hdr;
            m.msg_iov = recv_iov;
            m.msg_iovlen = 1;
            m.msg_name = recv_addr.cast();
            let m = &mut h.send_hdr[i].msg_hdr;
            m.msg_iov = send_iov;
            m.msg_iovlen = 1;
            m.msg_name = send_addr.cast();
        }
        Batch {
            bufs,
            h,
            received: 0,
            queued: 0,
        }
    }

    /// Reads up to [`BATCH`] datagrams from `fd` without blocking.
    pub(super) fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        for h in self.h.recv_hdr.iter_mut() {
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        // SAFETY: the headers point into this boxed batch, valid for BATCH entries.
        let n = unsafe {
            recvmmsg(
                fd,
                self.h.recv_hdr.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        self.queued = 0;
        self.received = match check(n) {
            Ok(n) => n as usize,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e) => return Err(e),
        };
        Ok(self.received)
    }

    /// Source address and payload of received packet `i` (None if truncated).
    pub(super) fn packet(&mut self, i: usize) -> Option<(SocketAddr, &mut [u8])> {
        let h = self.h.recv_hdr.get(i)?;
        if h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
            return None;
        }
        let len = (h.msg_len as usize).min(MAX_PACKET);
        let src = to_socket_addr(self.h.recv_addr.get(i)?)?;
        Some((src, self.bufs.get_mut(i)?.get_mut(..len)?))
    }

    /// Queues received packet `i` (length `len`) for sending to `to`.
    pub(super) fn queue(&mut self, i: usize, len: usize, to: &RawAddr) {
        let q = self.queued;
        if q >= BATCH || i >= BATCH {
            return;
        }
        self.h.send_iov[q].iov_base = self.bufs[i].as_mut_ptr().cast();
        self.h.send_iov[q].iov_len = len;
        self.h.send_addr[q] = to.storage;
        self.h.send_hdr[q].msg_hdr.msg_namelen = to.len;
        self.queued += 1;
    }

    /// Sends the queued packets from `fd`; returns how many were not sent.
    pub(super) fn flush(&mut self, fd: RawFd) -> usize {
        let mut sent = 0;
        while sent < self.queued {
            // SAFETY: headers sent..queued are set up and point into this batch.
            let n = unsafe {
                sendmmsg(
                    fd,
                    self.h.send_hdr.as_mut_ptr().add(sent),
                    (self.queued - sent) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if n <= 0 {
                // The packet at `sent` failed (unreachable peer, full buffer):
                // skip it and carry on with the rest.
                if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                sent += 1;
                let lost = 1 + self.flush_rest(fd, sent);
                self.queued = 0;
                return lost;
            }
            sent += n as usize;
        }
        self.queued = 0;
        0
    }

    fn flush_rest(&mut self, fd: RawFd, from: usize) -> usize {
        let q = self.queued;
        self.queued = q.saturating_sub(from);
        if self.queued == 0 {
            return 0;
        }
        self.h.send_hdr.copy_within(from..q, 0);
        self.h.send_iov.copy_within(from..q, 0);
        self.h.send_addr.copy_within(from..q, 0);
        for i in 0..self.queued {
            let iov: *mut libc::iovec = &mut self.h.send_iov[i];
            let addr: *mut libc::sockaddr_storage = &mut self.h.send_addr[i];
            self.h.send_hdr[i].msg_hdr.msg_iov = iov;
            self.h.send_hdr[i].msg_hdr.msg_name = addr.cast();
        }
        self.flush(fd)
    }
}
