//! The rtpengine "ng" control protocol, as far as the media benchmark needs it:
//! bencode values and `cookie <bencoded dict>` datagrams over UDP (shared by the
//! `media_load` generator and the `media_relay_ng` bench relay via `#[path]`).

// Each binary that includes this file uses only part of it.
#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

/// A bencode value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Dict(Vec<(Vec<u8>, Value)>),
}

impl Value {
    pub fn str(s: impl AsRef<[u8]>) -> Value {
        Value::Bytes(s.as_ref().to_vec())
    }

    pub fn dict(pairs: &[(&str, Value)]) -> Value {
        Value::Dict(
            pairs
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.clone()))
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(d) => d.iter().find(|(k, _)| k == key.as_bytes()).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn bytes(&self, key: &str) -> Option<&[u8]> {
        match self.get(key)? {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Int(i) => out.extend_from_slice(format!("i{i}e").as_bytes()),
            Value::Bytes(b) => {
                out.extend_from_slice(format!("{}:", b.len()).as_bytes());
                out.extend_from_slice(b);
            }
            Value::List(l) => {
                out.push(b'l');
                l.iter().for_each(|v| v.encode(out));
                out.push(b'e');
            }
            Value::Dict(d) => {
                out.push(b'd');
                for (k, v) in d {
                    Value::Bytes(k.clone()).encode(out);
                    v.encode(out);
                }
                out.push(b'e');
            }
        }
    }

    /// Decodes one value from the front of `input`; returns it and the rest.
    pub fn decode(input: &[u8]) -> Result<(Value, &[u8])> {
        let (&first, rest) = input
            .split_first()
            .ok_or_else(|| anyhow!("bencode: empty"))?;
        match first {
            b'i' => {
                let end = rest
                    .iter()
                    .position(|&b| b == b'e')
                    .ok_or_else(|| anyhow!("bencode: open integer"))?;
                let n = std::str::from_utf8(&rest[..end])?.parse()?;
                Ok((Value::Int(n), &rest[end + 1..]))
            }
            b'l' => {
                let mut items = Vec::new();
                let mut rest = rest;
                while rest.first() != Some(&b'e') {
                    let (v, r) = Value::decode(rest)?;
                    items.push(v);
                    rest = r;
                }
                Ok((Value::List(items), &rest[1..]))
            }
            b'd' => {
                let mut items = Vec::new();
                let mut rest = rest;
                while rest.first() != Some(&b'e') {
                    let (k, r) = Value::decode(rest)?;
                    let Value::Bytes(k) = k else {
                        bail!("bencode: dictionary key is not a string")
                    };
                    let (v, r) = Value::decode(r)?;
                    items.push((k, v));
                    rest = r;
                }
                Ok((Value::Dict(items), &rest[1..]))
            }
            b'0'..=b'9' => {
                let colon = input
                    .iter()
                    .position(|&b| b == b':')
                    .ok_or_else(|| anyhow!("bencode: string without length"))?;
                let len: usize = std::str::from_utf8(&input[..colon])?.parse()?;
                let body = input
                    .get(colon + 1..colon + 1 + len)
                    .ok_or_else(|| anyhow!("bencode: short string"))?;
                Ok((Value::Bytes(body.to_vec()), &input[colon + 1 + len..]))
            }
            other => bail!("bencode: unexpected byte {other:#x}"),
        }
    }
}

/// Splits an ng datagram into cookie and message.
pub fn parse_datagram(d: &[u8]) -> Result<(&[u8], Value)> {
    let sp = d
        .iter()
        .position(|&b| b == b' ')
        .ok_or_else(|| anyhow!("ng: no cookie"))?;
    let (v, _) = Value::decode(&d[sp + 1..])?;
    Ok((&d[..sp], v))
}

pub fn datagram(cookie: &[u8], v: &Value) -> Vec<u8> {
    let mut out = cookie.to_vec();
    out.push(b' ');
    v.encode(&mut out);
    out
}

/// A blocking ng client.
pub struct Client {
    sock: UdpSocket,
    server: SocketAddr,
    next: u64,
}

impl Client {
    pub fn new(server: SocketAddr) -> Result<Client> {
        let sock = UdpSocket::bind("127.0.0.1:0")?;
        sock.set_read_timeout(Some(Duration::from_secs(2)))?;
        Ok(Client {
            sock,
            server,
            next: 1,
        })
    }

    /// Sends `msg`, returns the reply (retrying twice on timeout); fails unless
    /// `result` is `ok`.
    pub fn call(&mut self, msg: &Value) -> Result<Value> {
        // Unique across runs: rtpengine replays its cached reply for a cookie it saw.
        let cookie = format!("{}-{}", std::process::id(), self.next);
        self.next += 1;
        let out = datagram(cookie.as_bytes(), msg);
        let mut buf = vec![0u8; 65536];
        for _ in 0..3 {
            self.sock.send_to(&out, self.server)?;
            let n = match self.sock.recv(&mut buf) {
                Ok(n) => n,
                Err(_) => continue,
            };
            let (c, v) = parse_datagram(&buf[..n])?;
            if c != cookie.as_bytes() {
                continue;
            }
            if v.bytes("result") != Some(b"ok") {
                let why = v
                    .bytes("error-reason")
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                bail!(
                    "ng: {:?} failed: {why}",
                    msg.bytes("command").map(String::from_utf8_lossy)
                );
            }
            return Ok(v);
        }
        Err(anyhow!("ng: no reply from {}", self.server)).context("is the relay running?")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() -> Result<()> {
        let v = Value::dict(&[
            ("command", Value::str("offer")),
            ("n", Value::Int(-3)),
            ("flags", Value::List(vec![Value::str("a"), Value::str("")])),
        ]);
        let d = datagram(b"k1", &v);
        let (c, back) = parse_datagram(&d)?;
        assert_eq!((c, back), (&b"k1"[..], v));
        Ok(())
    }
}
