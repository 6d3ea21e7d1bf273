#!/usr/bin/env python3
"""Writes one pcap per DTMF key (0-9, *, #) into this directory: the RFC 4733
telephone-event packets (payload type 101) a phone sends for one key press,
that SIPp plays with <exec play_pcap_audio="..."/> (tests/voice_ivr_sipp.rs).

Per key: a start packet (marker bit), two continuations and three end packets
(E bit), 20 ms apart, all with the same RTP timestamp, 8 kHz; 100 ms in total.
No scapy: Ethernet/IPv4/UDP/RTP headers are packed by hand with struct.
Run: python3 tests/sipp/dtmf/generate.py
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
PT = 101
KEYS = {str(d): d for d in range(10)}
KEYS.update({"star": 10, "hash": 11})


def ip_checksum(header):
    s = sum(struct.unpack("!10H", header))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return (~s) & 0xFFFF


def frame(payload, sport=4000, dport=4000):
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                     bytes([127, 0, 0, 2]), bytes([127, 0, 0, 1]))
    ip = ip[:10] + struct.pack("!H", ip_checksum(ip)) + ip[12:]
    eth = b"\x00" * 12 + b"\x08\x00"
    return eth + ip + udp


def packets(event):
    seq, ts, ssrc = 1000, 16000, 0x4D4B4C4E
    steps = [(False, 160), (False, 320), (False, 480), (True, 640), (True, 640), (True, 640)]
    for i, (end, duration) in enumerate(steps):
        marker = 0x80 if i == 0 else 0
        rtp = struct.pack("!BBHII", 0x80, marker | PT, seq + i, ts, ssrc)
        rtp += struct.pack("!BBH", event, (0x80 if end else 0) | 10, duration)
        yield i * 20_000, frame(rtp)


def write(name, event):
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for usec, data in packets(event):
        out += struct.pack("<IIII", 1_700_000_000, usec, len(data), len(data)) + data
    with open(os.path.join(HERE, f"{name}.pcap"), "wb") as f:
        f.write(out)


for name, event in KEYS.items():
    write(name, event)
