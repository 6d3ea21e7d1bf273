//! A small SIP + RTP caller for the IVR tests: it sends an INVITE whose SDP names
//! its own RTP socket, records the RTP the relay plays (with arrival times),
//! sends RFC 4733 telephone-events or SIP INFO digits, and answers the relay's BYE.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One RTP packet as received.
#[derive(Debug, Clone)]
pub struct Rtp {
    pub at: Instant,
    pub marker: bool,
    pub pt: u8,
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
    pub payload: Vec<u8>,
}

pub struct Caller {
    pub sip: UdpSocket,
    pub rtp: Arc<UdpSocket>,
    pub relay: SocketAddr,
    pub number: String,
    pub caller: String,
    call_id: String,
    from_tag: String,
    to_tag: Option<String>,
    remote_target: String,
    pub remote_rtp: Option<SocketAddr>,
    pub answer: String,
    cseq: u32,
    pub received: Arc<Mutex<Vec<Rtp>>>,
    stop: Arc<AtomicBool>,
    te_seq: u16,
    te_ts: u32,
}

impl Drop for Caller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl Caller {
    /// A caller on 127.0.0.2 with number `caller`, about to call `number`.
    pub fn new(relay: SocketAddr, caller: &str, number: &str) -> Caller {
        let sip = UdpSocket::bind("127.0.0.2:0").unwrap();
        sip.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let rtp = Arc::new(UdpSocket::bind("127.0.0.2:0").unwrap());
        rtp.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (rtp, received, stop) = (rtp.clone(), received.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::SeqCst) {
                    if let Ok(n) = rtp.recv(&mut buf) {
                        let at = Instant::now();
                        let b = &buf[..n];
                        if n < 12 {
                            continue;
                        }
                        received.lock().unwrap().push(Rtp {
                            at,
                            marker: b[1] & 0x80 != 0,
                            pt: b[1] & 0x7F,
                            seq: u16::from_be_bytes([b[2], b[3]]),
                            ts: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
                            ssrc: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
                            payload: b[12..].to_vec(),
                        });
                    }
                }
            });
        }
        Caller {
            sip,
            rtp,
            relay,
            number: number.to_owned(),
            caller: caller.to_owned(),
            call_id: format!("ivr-{}@test", rand::random::<u64>()),
            from_tag: format!("ft{}", rand::random::<u32>()),
            to_tag: None,
            remote_target: format!("sip:{number}@{relay}"),
            remote_rtp: None,
            answer: String::new(),
            cseq: 1,
            received,
            stop,
            te_seq: rand::random(),
            te_ts: rand::random(),
        }
    }

    fn me(&self) -> SocketAddr {
        self.sip.local_addr().unwrap()
    }

    fn headers(&self, method: &str, cseq: u32, uri: &str) -> String {
        let to_tag = self
            .to_tag
            .as_ref()
            .map(|t| format!(";tag={t}"))
            .unwrap_or_default();
        format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{b}\r\n\
             From: <sip:{caller}@127.0.0.2>;tag={ft}\r\nTo: <sip:{num}@{relay}>{to_tag}\r\n\
             Call-ID: {cid}\r\nCSeq: {cseq} {method}\r\nContact: <sip:{caller}@{me}>\r\nMax-Forwards: 70\r\n",
            me = self.me(),
            b = rand::random::<u32>(),
            caller = self.caller,
            ft = self.from_tag,
            num = self.number,
            relay = self.relay,
            cid = self.call_id,
        )
    }

    /// Sends the INVITE (PCMU + telephone-event 101) and waits for the final
    /// response; on 2xx sends the ACK. Returns the status.
    pub fn invite(&mut self) -> u16 {
        self.send_invite();
        self.finish_invite()
    }

    /// Waits for a provisional response `status` to the INVITE; returns it.
    pub fn wait_response(&mut self, status: u16) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            assert!(Instant::now() < deadline, "no {status}");
            let Some(m) = self.recv() else { continue };
            if m.starts_with(&format!("SIP/2.0 {status} ")) && m.contains(&self.call_id) {
                self.take_sdp(&m);
                return m;
            }
        }
    }

    /// Sends the INVITE only.
    pub fn send_invite(&mut self) {
        let rtp = self.rtp.local_addr().unwrap();
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n\
             m=audio {} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n",
            rtp.port()
        );
        let uri = format!("sip:{}@{}", self.number, self.relay);
        let msg = format!(
            "{}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            self.headers("INVITE", 1, &uri),
            sdp.len()
        );
        self.sip.send_to(msg.as_bytes(), self.relay).unwrap();
    }

    /// Waits for the INVITE's final response (ACKs a 2xx); returns the status.
    pub fn finish_invite(&mut self) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            assert!(Instant::now() < deadline, "no final response to the INVITE");
            let Some(m) = self.recv() else { continue };
            if !m.starts_with("SIP/2.0 ") || !m.contains(&self.call_id) {
                continue;
            }
            let status: u16 = m[8..11].parse().unwrap();
            if status < 200 {
                if status == 183 {
                    self.take_sdp(&m);
                }
                continue;
            }
            if (200..300).contains(&status) {
                self.to_tag = header(&m, "To")
                    .and_then(|t| t.split(";tag=").nth(1).map(|s| s.trim().to_owned()));
                if let Some(c) = header(&m, "Contact") {
                    let c = c.trim_start_matches('<');
                    self.remote_target = c.split('>').next().unwrap().to_owned();
                }
                self.take_sdp(&m);
                let ack = format!(
                    "{}Content-Length: 0\r\n\r\n",
                    self.headers("ACK", 1, &self.remote_target.clone())
                );
                self.sip.send_to(ack.as_bytes(), self.relay).unwrap();
            }
            return status;
        }
    }

    fn take_sdp(&mut self, m: &str) {
        let body = m.split("\r\n\r\n").nth(1).unwrap_or("");
        if body.is_empty() {
            return;
        }
        self.answer = body.to_owned();
        let ip = body
            .lines()
            .find_map(|l| l.strip_prefix("c=IN IP4 "))
            .unwrap()
            .trim();
        let port = body
            .lines()
            .find_map(|l| l.strip_prefix("m=audio "))
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap();
        self.remote_rtp = Some(format!("{ip}:{port}").parse().unwrap());
    }

    fn recv(&self) -> Option<String> {
        let mut buf = [0u8; 65535];
        let (n, _) = self.sip.recv_from(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// Sends one DTMF digit as RFC 4733 events (start, continuation, three ends)
    /// at 20 ms intervals, from the RTP socket to the relay.
    pub fn rtp_digit(&mut self, d: char) {
        let ev: u8 = match d {
            '0'..='9' => d as u8 - b'0',
            '*' => 10,
            '#' => 11,
            _ => panic!("digit {d}"),
        };
        let to = self.remote_rtp.expect("no SDP answer yet");
        self.te_ts = self.te_ts.wrapping_add(1600);
        for (i, (end, dur)) in [
            (false, 160u16),
            (false, 320),
            (true, 480),
            (true, 480),
            (true, 480),
        ]
        .into_iter()
        .enumerate()
        {
            let mut p = vec![0x80, 101 | if i == 0 { 0x80 } else { 0 }];
            p.extend_from_slice(&self.te_seq.to_be_bytes());
            p.extend_from_slice(&self.te_ts.to_be_bytes());
            p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
            p.extend_from_slice(&[ev, if end { 0x8A } else { 0x0A }]);
            p.extend_from_slice(&dur.to_be_bytes());
            self.te_seq = self.te_seq.wrapping_add(1);
            self.rtp.send_to(&p, to).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(60));
    }

    pub fn rtp_digits(&mut self, s: &str) {
        for d in s.chars() {
            self.rtp_digit(d);
        }
    }

    /// Sends one digit as SIP INFO (`application/dtmf-relay`); returns the status.
    pub fn info_digit(&mut self, d: char) -> u16 {
        self.cseq += 1;
        let body = format!("Signal={d}\r\nDuration=160\r\n");
        let msg = format!(
            "{}Content-Type: application/dtmf-relay\r\nContent-Length: {}\r\n\r\n{body}",
            self.headers("INFO", self.cseq, &self.remote_target.clone()),
            body.len()
        );
        self.sip.send_to(msg.as_bytes(), self.relay).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            assert!(Instant::now() < deadline, "no answer to INFO");
            let Some(m) = self.recv() else { continue };
            if m.starts_with("SIP/2.0 ") && m.contains(&format!("{} INFO", self.cseq)) {
                return m[8..11].parse().unwrap();
            }
            self.answer_bye_if(&m);
        }
    }

    pub fn info_digits(&mut self, s: &str) {
        for d in s.chars() {
            assert_eq!(self.info_digit(d), 200);
        }
    }

    fn answer_bye_if(&self, m: &str) -> bool {
        if !m.starts_with("BYE ") {
            return false;
        }
        let mut resp = String::from("SIP/2.0 200 OK\r\n");
        for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
            if let Some(v) = header(m, name) {
                resp.push_str(&format!("{name}: {v}\r\n"));
            }
        }
        resp.push_str("Content-Length: 0\r\n\r\n");
        self.sip.send_to(resp.as_bytes(), self.relay).unwrap();
        true
    }

    /// Waits (at most `secs`) for the relay's BYE and answers it.
    pub fn expect_bye(&self, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            assert!(Instant::now() < deadline, "no BYE from the relay");
            let Some(m) = self.recv() else { continue };
            if self.answer_bye_if(&m) {
                return m;
            }
        }
    }

    /// Sends BYE and waits for its 200.
    pub fn bye(&mut self) {
        self.cseq += 1;
        let msg = format!(
            "{}Content-Length: 0\r\n\r\n",
            self.headers("BYE", self.cseq, &self.remote_target.clone())
        );
        self.sip.send_to(msg.as_bytes(), self.relay).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            assert!(Instant::now() < deadline, "no answer to BYE");
            let Some(m) = self.recv() else { continue };
            if m.starts_with("SIP/2.0 200") && m.contains(&format!("{} BYE", self.cseq)) {
                return;
            }
        }
    }

    /// The RTP received so far.
    pub fn rtp(&self) -> Vec<Rtp> {
        self.received.lock().unwrap().clone()
    }

    /// Every packet, once none has arrived for 300 ms (at most 5 s): the end of a
    /// prompt may still be on its way when the BYE that follows it is read.
    pub fn settled_rtp(&self) -> Vec<Rtp> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut n = self.rtp().len();
        loop {
            std::thread::sleep(Duration::from_millis(300));
            let now = self.rtp().len();
            if now == n || Instant::now() > deadline {
                return self.rtp();
            }
            n = now;
        }
    }

    /// Waits until `n` packets arrived (at most `secs`).
    pub fn wait_rtp(&self, n: usize, secs: u64) -> Vec<Rtp> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let r = self.rtp();
            if r.len() >= n || Instant::now() > deadline {
                return r;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The value of header `name` in a SIP message.
pub fn header(m: &str, name: &str) -> Option<String> {
    m.lines().take_while(|l| !l.is_empty()).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}
