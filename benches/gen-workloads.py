#!/usr/bin/env python3
"""Independent synthetic workloads for `synprobe replay`, with their ground truth.

Written from scratch (Python 3 stdlib only): no code is shared with synprobe or its own generator
(benches/src/generate.rs), so the traffic is not shaped by the code it checks.

    gen-workloads.py scan OUT.pcap [--syns 1000000] [--seed 1] [--gap-us 10]
    gen-workloads.py mesh OUT.pcap [--frames 5000000] [--seed 1]

Each writes a classic pcap (Ethernet, microsecond timestamps, valid IPv4 header / TCP / UDP / ICMP / ICMPv6
checksums, frames padded to 60 bytes) and OUT.truth.json beside it ({"seed", "counts", "mix", ...}); "counts"
uses the key names of synprobe's JSON summary and holds only what the generator is sure of.

scan: one scanner (masscan-like: TTL 255, window 1024, no options, random source ports, no retransmissions)
sends one SYN to each of N distinct IPv4 addresses (a pseudo-random permutation of 198.18.0.0/15 and
100.64.0.0/10) about --gap-us apart, cycling ports 443/80/22/8443. 10% answer SYN-ACK after an RTT of 1-80 ms
(the scanner's kernel then sends its RST), 5% answer RST+ACK from their own stack, the rest are silent. At
100,000 SYNs/s more attempts are in flight (an unanswered one waits 4 s) than synprobe's documented default
table cap (MatchConfig::max_in_flight = 262,144): the generator counts the evictions that cap implies
(earliest deadline first) and writes them as counts.evicted.

mesh: a datacenter / service-mesh capture at a spine tap (802.1Q-tagged for half of the server VLANs): health
checkers, Linux pods and Windows hosts (IPv4, ~15% IPv6) connect to 60,000 servers with 3-6 ports each. Servers
have per-server OS (initial TTL 64/128/255), hop distances (mostly 1-5, some remote), RTTs (0.05 ms - 150 ms),
and per-port states: open, closed (RST from the stack), DROP (silence), REJECT on the host (ICMP port
unreachable / host- / admin-prohibited from the target), ACL on a router (admin prohibited), host down (ICMP host
unreachable from the last router after ARP fails), no route (net unreachable from a router). Clients retransmit
as their OS does (Linux 1/3/7/15 s, Windows 3/9 s) within their connect timeouts. Open connections are
half-open checks (client RST), HTTP checks (GET, response, FIN), or stay up and carry data; pre-existing
connections carry data and are torn down with FIN or RST; plus DNS/NTP/statsd over UDP, pings, ARP, ICMP errors
quoting UDP, SYN-ACKs/RSTs answering SYNs routed around the tap (stray), and PMTU errors quoting data (stray).
"""

import argparse
import heapq
import json
import math
import os
import random
import struct
import sys
import time
from collections import deque

START = 1767225600  # 2026-01-01T00:00:00Z

S_IP4 = struct.Struct('>BBHHHBBH4s4s').pack
S_IP6 = struct.Struct('>IHBB16s16s').pack
S_TCP = struct.Struct('>HHIIHHHH').pack
S_UDP = struct.Struct('>HHHH').pack
S_ICMP = struct.Struct('>BBHI').pack
S_REC = struct.Struct('<IIII').pack
PCAP_HEADER = struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 262144, 1)
PAD = bytes(64)

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
M32 = 0xffffffff
SEC = 1_000_000

# synprobe's documented matcher defaults (docs: MatchConfig): reply window 3 s after the last SYN; an unanswered
# attempt waits one more backoff interval (1 s after a lone SYN, 2*gap + 1 s after a retransmission, <= 64 s).
TIMEOUT = 3 * SEC
MAX_IN_FLIGHT = 1 << 18


def addr(b):
    """An address: its bytes and the one's complement sum of its 16-bit words (mod 65535)."""
    return (bytes(b), int.from_bytes(b, 'big') % 65535)


def a4(a, b, c, d):
    return addr(bytes((a, b, c, d)))


def a6(*words):
    return addr(struct.pack('>8H', *words))


def fmt(a):
    b = a[0]
    if len(b) == 4:
        return '.'.join(map(str, b))
    return ':'.join('%x' % w for w in struct.unpack('>8H', b))


# --------------------------------------------------------------------------------------------- packet builders
# Checksums: the one's complement sum of 16-bit big-endian words is congruent to the whole byte string read as one
# big-endian integer modulo 65535 (2^16 = 1 mod 65535); the checksum is then (-sum) mod 65535, which gives 0x0000
# where the folded sum is 0xffff (still valid; UDP sends 0xffff for it).

def tcp_ip(src, dst, sport, dport, seq, ack, flags, win, opts, pay, ttl, tos=0, ident=0, df=True, flow=0):
    hl = 20 + len(opts)
    seglen = hl + len(pay)
    of = (hl << 10) | flags
    c = src[1] + dst[1] + 6 + seglen + sport + dport + seq + ack + of + win
    if opts:
        c += int.from_bytes(opts, 'big')
    if pay:
        c += int.from_bytes(pay, 'big') << (8 if len(pay) & 1 else 0)
    seg = S_TCP(sport, dport, seq, ack, of, win, -c % 65535, 0) + opts + pay
    if len(src[0]) == 4:
        tl = 20 + seglen
        ff = 0x4000 if df else 0
        ic = -((0x4500 | tos) + tl + ident + ff + (ttl << 8 | 6) + src[1] + dst[1]) % 65535
        return S_IP4(0x45, tos, tl, ident, ff, ttl, 6, ic, src[0], dst[0]) + seg
    return S_IP6(0x60000000 | tos << 20 | flow, seglen, 6, ttl, src[0], dst[0]) + seg


def udp_ip(src, dst, sport, dport, pay, ttl, tos=0, ident=0, df=False, flow=0):
    ul = 8 + len(pay)
    c = src[1] + dst[1] + 17 + ul + sport + dport + ul
    if pay:
        c += int.from_bytes(pay, 'big') << (8 if len(pay) & 1 else 0)
    cs = -c % 65535 or 0xffff
    seg = S_UDP(sport, dport, ul, cs) + pay
    if len(src[0]) == 4:
        tl = 20 + ul
        ff = 0x4000 if df else 0
        ic = -((0x4500 | tos) + tl + ident + ff + (ttl << 8 | 17) + src[1] + dst[1]) % 65535
        return S_IP4(0x45, tos, tl, ident, ff, ttl, 17, ic, src[0], dst[0]) + seg
    return S_IP6(0x60000000 | tos << 20 | flow, ul, 17, ttl, src[0], dst[0]) + seg


def icmp_ip(src, dst, typ, code, rest, body, ttl, tos=0, ident=0, df=False, flow=0):
    """ICMP (IPv4) or ICMPv6 message: type, code, checksum, 4 bytes `rest`, then `body`."""
    ml = 8 + len(body)
    c = (typ << 8 | code) + rest
    if body:
        c += int.from_bytes(body, 'big') << (8 if len(body) & 1 else 0)
    if len(src[0]) == 4:
        msg = S_ICMP(typ, code, -c % 65535, rest) + body
        tl = 20 + ml
        ff = 0x4000 if df else 0
        ic = -((0x4500 | tos) + tl + ident + ff + (ttl << 8 | 1) + src[1] + dst[1]) % 65535
        return S_IP4(0x45, tos, tl, ident, ff, ttl, 1, ic, src[0], dst[0]) + msg
    c += src[1] + dst[1] + ml + 58
    msg = S_ICMP(typ, code, -c % 65535, rest) + body
    return S_IP6(0x60000000 | tos << 20 | flow, ml, 58, ttl, src[0], dst[0]) + msg


def quote_of(ip_packet, v6, minimal=False):
    """What an ICMP error quotes: RFC 792's IP header + 8 bytes, or as much as fits in 576 / 1280 bytes."""
    if minimal:
        return ip_packet[:28]
    return ip_packet[:1232] if v6 else ip_packet[:548]


def mac(n):
    return struct.pack('>HI', 0x0200, n)


ROUTER_A = mac(0x5e0001)  # the spine's two sides
ROUTER_B = mac(0x5e0002)


def eth_prefix(dst_mac, src_mac, v6, vlan=None):
    et = b'\x86\xdd' if v6 else b'\x08\x00'
    if vlan is None:
        return dst_mac + src_mac + et
    return dst_mac + src_mac + struct.pack('>HH', 0x8100, vlan) + et


class Out:
    """pcap writer: one big buffer, written in 8 MiB pieces."""

    def __init__(self, path):
        self.f = open(path, 'wb')
        self.buf = bytearray(PCAP_HEADER)
        self.frames = 0
        self.bytes = 0
        self.last = 0

    def put(self, t, frame):
        n = len(frame)
        if n < 60:
            frame += PAD[:60 - n]
            n = 60
        if t < self.last:
            raise AssertionError('time goes back: %d < %d' % (t, self.last))
        self.last = t
        b = self.buf
        b += S_REC(START + t // SEC, t % SEC, n, n)
        b += frame
        self.frames += 1
        if len(b) > 1 << 23:
            self.f.write(b)
            self.bytes += len(b)
            self.buf = bytearray()

    def close(self):
        self.f.write(self.buf)
        self.bytes += len(self.buf)
        self.f.close()


# ------------------------------------------------------------------------------------------------------- scan

def gen_scan(path, syns, seed, gap_us):
    r = random.Random(seed)
    out = Out(path)
    scanner = a4(203, 0, 113, 50)
    # Targets: 198.18.0.0/15 (2^17) then 100.64.0.0/10 (2^22), visited in the order of an affine permutation.
    space = (1 << 17) + (1 << 22)  # = 2^17 * 33
    if syns > space:
        sys.exit('scan: at most %d distinct targets' % space)
    while True:
        mult = r.randrange(space // 3, space) | 1
        if mult % 3 and mult % 11:
            break
    offset = r.randrange(space)

    def target(i):
        x = (mult * i + offset) % space
        if x < (1 << 17):
            return bytes((198, 18 + (x >> 16), (x >> 8) & 255, x & 255))
        x -= 1 << 17
        return bytes((100, 64 + (x >> 16), (x >> 8) & 255, x & 255))

    ports = (443, 443, 443, 80, 80, 22, 8443, 443, 80, 3389)
    eth_out = eth_prefix(ROUTER_A, mac(0x500), False)
    eth_in = eth_prefix(mac(0x500), ROUTER_A, False)
    mss_opts = {1460: b'\x02\x04\x05\xb4', 1400: b'\x02\x04\x05\x78', 1380: b'\x02\x04\x05\x64'}
    heap = []
    seq = 0
    counts = dict(open=0, closed=0, filtered=0)
    mix = dict(syn_frames=0, syn_acks=0, rsts=0, scanner_rsts=0)
    # The eviction model: every attempt's deadline is its SYN + 4 s (no retransmissions; a reply does not move
    # it); a frame at time t first closes those whose deadline is before t; a SYN finding the table full evicts
    # the earliest deadline.
    inflight = deque()
    evicted = 0

    def emit(t, frame, is_syn):
        nonlocal evicted
        while inflight and inflight[0] < t:
            inflight.popleft()
        if is_syn:
            if len(inflight) >= MAX_IN_FLIGHT:
                inflight.popleft()
                evicted += 1
            inflight.append(t + TIMEOUT + SEC)
        out.put(t, frame)

    t = 0
    ident = r.getrandbits(16)
    gap_lo, gap_hi = max(1, gap_us * 4 // 5), gap_us * 6 // 5
    for i in range(syns):
        t += r.randint(gap_lo, gap_hi)
        while heap and heap[0][0] <= t:
            ht, _, hf = heapq.heappop(heap)
            emit(ht, hf, False)
        dst = addr(target(i))
        port = ports[i % len(ports)]
        sport = r.randint(32768, 61000)
        isn = r.getrandbits(32)
        ident = (ident + 1) & 0xffff
        syn = tcp_ip(scanner, dst, sport, port, isn, 0, SYN, 1024, b'', b'', 255, 0, ident, False)
        emit(t, eth_out + syn, True)
        mix['syn_frames'] += 1
        u = r.random()
        if u < 0.15:
            # The target's stack: initial TTL, hops (internet: 6-28 routers), RTT 1-80 ms.
            k = r.random()
            initial = 64 if k < 0.6 else (128 if k < 0.85 else 255)
            hops = r.randint(7, 29)
            ttl = initial - (hops - 1)
            rtt = int(1000 * math.exp(r.uniform(0.0, math.log(80.0))))
            at = t + rtt
            tid = 0 if initial == 64 else r.getrandbits(16)
            if u < 0.10:
                win = (64240, 65535, 29200, 14600, 8192)[r.randrange(5)]
                opts = mss_opts[(1460, 1460, 1400, 1380)[r.randrange(4)]]
                sa = tcp_ip(dst, scanner, port, sport, r.getrandbits(32), (isn + 1) & M32, SYN | ACK, win, opts,
                            b'', ttl, 0, tid, True)
                seq += 1
                heapq.heappush(heap, (at, seq, eth_in + sa))
                # The scanner's kernel knows no such connection: RST (seq = the SYN-ACK's ack).
                krst = tcp_ip(scanner, dst, sport, port, (isn + 1) & M32, 0, RST, 0, b'', b'', 64, 0, 0, True)
                seq += 1
                heapq.heappush(heap, (at + r.randint(20, 150), seq, eth_out + krst))
                counts['open'] += 1
                mix['syn_acks'] += 1
                mix['scanner_rsts'] += 1
            else:
                rst = tcp_ip(dst, scanner, port, sport, 0, (isn + 1) & M32, RST | ACK, 0, b'', b'', ttl, 0, tid,
                             True)
                seq += 1
                heapq.heappush(heap, (at, seq, eth_in + rst))
                counts['closed'] += 1
                mix['rsts'] += 1
        else:
            counts['filtered'] += 1
    while heap:
        ht, _, hf = heapq.heappop(heap)
        emit(ht, hf, False)
    out.close()
    by_verdict = {k: v for k, v in sorted(counts.items()) if v}
    truth = {
        'generator': 'gen-workloads.py scan',
        'seed': seed,
        'counts': {
            'frames': out.frames,
            'not_ip': 0,
            'malformed': 0,
            'attempts': syns,
            'by_verdict': by_verdict,
            'retransmitted_attempts': 0,
            'retransmissions': 0,
            'replies': counts['open'] + counts['closed'],
            'stray_tcp': 0,
            'stray_icmp': 0,
            'other_resets': 0,
            'late_replies': 0,
            'rebuilt_from_icmp': 0,
            'evicted': evicted,
        },
        'mix': dict(mix, file_bytes=out.bytes, duration_secs=out.last / SEC, distinct_targets=syns,
                    distinct_server_ports=syns),
    }
    return truth


# ------------------------------------------------------------------------------------------------------- mesh

def deadline_of(events):
    """synprobe's documented reply window for an attempt: `events` = [(time, 'syn'|'reply')], time-ordered, the
    first a SYN. Returns the deadline (the attempt closes at the first frame after it)."""
    t0 = events[0][0]
    d = t0 + TIMEOUT + SEC
    last = t0
    replied = False
    for t, kind in events[1:]:
        if kind == 'reply':
            replied = True
            continue
        gap = t - last
        nd = t + TIMEOUT + (min(2 * gap + SEC, 64 * SEC) if not replied else 0)
        d = max(d, nd)
        last = t
    return d


SERVICE_PORTS = (8080, 8443, 443, 80, 9090, 9100, 15021, 15090, 50051, 6443, 10250, 2379, 3306, 5432, 6379,
                 27017, 9200, 9092, 11211, 22, 8500, 3000, 5000, 8000, 8081, 8888, 7001, 5672, 2181, 4317, 9000,
                 53, 9093, 9443, 1433, 389, 636, 25, 8300, 4000)
LINUX_SYN_RETX = (1, 3, 7, 15, 31)   # seconds after the first SYN (RTO 1 s doubling)
WINDOWS_SYN_RETX = (3, 9)            # 3 s, then 6 s later


class Server:
    __slots__ = ('addr', 'v6', 'os', 'initial', 'hops', 'ttl', 'rtt', 'ports', 'pstate', 'state', 'rtr',
                 'rtr_hops', 'rtr_ttl', 'acl_rtr', 'acl_hops', 'acl_ttl', 'e_c2s', 'e_s2c', 'restart', 'labels',
                 'ident')


class Client:
    __slots__ = ('addr', 'v6', 'kind', 'os', 'ttl', 'tos', 'port', 'lo', 'hi', 'used', 'timeout', 'tsval',
                 'ident', 'eth')


class Flow:
    __slots__ = ('c', 's', 'cport', 'sport', 'cseq', 'sseq', 'safe', 'cflow', 'sflow', 'ts', 'cident',
                 'sident')


def gen_mesh(path, nframes, seed):
    r = random.Random(seed)
    rnd = r.random
    rint = r.randint
    bits = r.getrandbits
    out = Out(path)

    n_v4, n_v6 = 51_000, 9_000
    routers_v4 = [a4(10, 254, i >> 8, i & 255) for i in range(1, 801)]
    routers_v6 = [a6(0xfd00, 0xfe, 0, 0, 0, 0, 0, i) for i in range(1, 801)]

    servers = []
    for i in range(n_v4 + n_v6):
        s = Server()
        v6 = i >= n_v4
        j = i - n_v4 if v6 else i
        s.v6 = v6
        if v6:
            s.addr = a6(0xfd00, 0x10, j >> 12, 0, 0, 0, 0, (j & 0xfff) + 1)
        else:
            s.addr = a4(172, 16 + (j >> 16), (j >> 8) & 255, j & 255)
        k = rnd()
        s.os = 'L' if k < 0.75 else ('W' if k < 0.95 else 'A')
        s.initial = {'L': 64, 'W': 128, 'A': 255}[s.os]
        k = rnd()
        if k < 0.08:
            routers = 0
        elif k < 0.45:
            routers = rint(1, 2)
        elif k < 0.80:
            routers = rint(3, 4)
        elif k < 0.95:
            routers = rint(5, 8)
        else:
            routers = rint(9, 16)
        s.hops = routers + 1
        s.ttl = s.initial - routers
        if routers <= 4:
            s.rtt = rint(50, 1200)
        elif routers <= 8:
            s.rtt = rint(2_000, 40_000)
        else:
            s.rtt = rint(40_000, 150_000)
        nports = rint(3, 6)
        ps = []
        while len(ps) < nports:
            p = SERVICE_PORTS[int(rnd() ** 2 * len(SERVICE_PORTS))] if rnd() < 0.8 else rint(30000, 32767)
            if p not in ps:
                ps.append(p)
        s.ports = tuple(ps)
        k = rnd()
        if s.hops < 2 or k < 0.92:
            s.state = 'up'
        elif k < 0.95:
            s.state = 'down'
        elif k < 0.97:
            s.state = 'noroute'
        else:
            s.state = 'acl'
        st = []
        for _ in ps:
            k = rnd()
            if s.state == 'acl' and rnd() < 0.5:
                st.append('acl')
            elif k < 0.72:
                st.append('open')
            elif k < 0.84:
                st.append('closed')
            elif k < 0.93:
                st.append('drop')
            else:
                st.append('reject')
        s.pstate = tuple(st)
        rt = routers_v6 if v6 else routers_v4
        if s.hops >= 2:
            s.rtr = rt[rint(0, len(rt) - 1)]
            s.rtr_hops = s.hops - 1
            rinit = 255 if rnd() < 0.7 else 64
            s.rtr_ttl = rinit - (s.rtr_hops - 1)
            s.acl_rtr = rt[rint(0, len(rt) - 1)]
            s.acl_hops = rint(1, s.hops - 1)
            s.acl_ttl = (255 if rnd() < 0.7 else 64) - (s.acl_hops - 1)
        else:
            s.rtr = s.acl_rtr = None
            s.rtr_hops = s.acl_hops = s.rtr_ttl = s.acl_ttl = 0
        vlan = 100 + (j % 40) if (j % 80) < 40 else None
        smac = mac(0x100000 + i)
        s.e_c2s = eth_prefix(smac, ROUTER_A, v6, vlan)
        s.e_s2c = eth_prefix(ROUTER_A, smac, v6, vlan)
        s.restart = None
        s.labels = s.os != 'W'  # IPv6 flow labels on every packet (Linux, appliances), or on none (Windows)
        s.ident = bits(16)
        servers.append(s)
    s4 = servers[:n_v4]
    s6 = servers[n_v4:]

    # Clients: health checkers (Linux, short timeouts), pods (Linux), Windows hosts.
    approx_attempts = nframes * 0.18
    n_lb4 = max(48, int(approx_attempts * 0.35 * 0.85 / 8000) + 1)
    n_lb6 = max(8, int(approx_attempts * 0.35 * 0.15 / 8000) + 1)
    clients = {('lb', False): [], ('lb', True): [], ('pod', False): [], ('pod', True): [],
               ('win', False): [], ('win', True): []}
    sizes = {('lb', False): n_lb4, ('lb', True): n_lb6, ('pod', False): 3000, ('pod', True): 520,
             ('win', False): 450, ('win', True): 80}
    cid = 0
    for (kind, v6), n in sizes.items():
        for j in range(n):
            c = Client()
            c.kind = kind
            c.v6 = v6
            net = {'lb': 2, 'pod': 1, 'win': 3}[kind]
            if v6:
                c.addr = a6(0xfd00, 0xc, net, 0, 0, 0, j >> 16, (j & 0xffff) + 1)
            else:
                c.addr = a4(10, net, j // 250, j % 250 + 1)
                if j >= 250 * 256:
                    sys.exit('too many clients')
            c.os = 'W' if kind == 'win' else 'L'
            c.ttl = (128 if c.os == 'W' else 64) - rint(0, 1)
            c.tos = 0x48 if (kind == 'pod' and rnd() < 0.06) else 0
            if c.os == 'W':
                c.lo, c.hi = 49152, 60999
                c.timeout = 21 * SEC if rnd() < 0.7 else 5 * SEC
            else:
                c.lo, c.hi = 32768, 60999
                if kind == 'lb':
                    c.timeout = SEC if rnd() < 0.6 else 2 * SEC
                else:
                    c.timeout = (3 * SEC, 5 * SEC, 10 * SEC, 30 * SEC)[rint(0, 3)]
            c.port = rint(c.lo, c.hi)
            c.used = 0
            c.tsval = bits(32)
            c.ident = bits(16)
            c.eth = None
            cid += 1
            clients[(kind, v6)].append(c)

    # Restarts: 1% of the servers restart once, for 10-40 s: their open ports answer RST meanwhile.
    est_duration = nframes / 15000.0 * SEC
    for s in servers:
        if rnd() < 0.01:
            a = rint(0, max(1, int(est_duration)))
            s.restart = (a, a + rint(10, 40) * SEC)

    PAYLOAD = bytes(r.getrandbits(8) for _ in range(70000))

    def payload(n):
        o = rint(0, 68000)
        return PAYLOAD[o:o + n]

    def syn_opts(c):
        if c.os == 'W':
            return (b'\x02\x04\x05\xa0' if c.v6 else b'\x02\x04\x05\xb4') + b'\x01\x03\x03\x08\x01\x01\x04\x02'
        c.tsval = (c.tsval + rint(1, 5000)) & M32
        return ((b'\x02\x04\x05\xa0' if c.v6 else b'\x02\x04\x05\xb4') + b'\x04\x02\x08\x0a'
                + struct.pack('>I', c.tsval) + b'\x00\x00\x00\x00\x01\x03\x03\x07')

    def synack_opts(s, c):
        mss = b'\x02\x04\x05\xa0' if s.v6 else b'\x02\x04\x05\xb4'
        if s.os == 'W':
            return mss + b'\x01\x03\x03\x08\x01\x01\x04\x02'
        if s.os == 'A':
            return mss + b'\x01\x03\x03\x00'
        if c.os == 'W':
            return mss + b'\x01\x01\x04\x02\x01\x03\x03\x07'
        return mss + b'\x04\x02\x08\x0a' + struct.pack('>II', bits(32), c.tsval) + b'\x01\x03\x03\x07'

    def ts_opt(v):
        return b'\x01\x01\x08\x0a' + struct.pack('>II', v & M32, (v * 7) & M32)

    counts = dict(attempts=0, retransmitted_attempts=0, retransmissions=0, replies=0, stray_tcp=0,
                  stray_icmp=0, other_resets=0, late_replies=0, not_ip=0)
    verdicts = {}
    mix = dict(syn_frames=0, syn_acks=0, stack_rsts=0, icmp_from_target=0, icmp_from_router=0,
               minimal_quotes=0, half_open_checks=0, http_checks=0, kept_connections=0, synack_lost=0,
               syn_lost=0, data_frames=0, fin_closes=0, teardown_rsts=0, dns_frames=0, ntp_frames=0,
               statsd_frames=0, echo_frames=0, arp_frames=0, icmp_quoting_udp=0, stray_synacks=0,
               stray_rsts=0, stray_pmtu=0, ipv6_attempts=0, dscp_attempts=0, windows_attempts=0)
    distinct = set()

    heap = []
    hseq = [0]
    push = heapq.heappush
    pop = heapq.heappop
    put = out.put

    def sched(t, frame):
        hseq[0] += 1
        push(heap, (t, hseq[0], frame))

    pool = []          # flows carrying data
    pending = deque()  # (ready time, flow): connections opened in the capture, not yet established

    def new_old_flow():
        """A connection whose handshake is before the capture (client ports 61000-65535: never an attempt's)."""
        v6 = rnd() < 0.15
        kind = 'pod' if rnd() < 0.85 else 'win'
        c = clients[(kind, v6)][rint(0, len(clients[(kind, v6)]) - 1)]
        ss = s6 if v6 else s4
        while True:
            s = ss[rint(0, len(ss) - 1)]
            if s.state == 'up' and 'open' in s.pstate:
                break
        f = Flow()
        f.c, f.s = c, s
        f.cport = rint(61000, 65535)
        f.sport = s.ports[s.pstate.index('open')]
        f.cseq, f.sseq = bits(32), bits(32)
        f.safe = 0
        f.cflow = bits(20) | 1
        f.sflow = (bits(20) | 1) if s.labels else 0
        f.ts = c.os == 'L' and s.os != 'W'
        f.cident, f.sident = bits(16), bits(16)
        return f

    for _ in range(6000):
        pool.append(new_old_flow())

    def pick_server(v6):
        ss = s6 if v6 else s4
        if rnd() < 0.7:
            return ss[int(rnd() * len(ss))]
        return ss[int(rnd() ** 3 * len(ss))]

    def c2s(f, flags, pay, now):
        c, s = f.c, f.s
        f.cident = (f.cident + 1) & 0xffff
        opts = ts_opt(now // 1000 + f.cport) if f.ts else b''
        ip = tcp_ip(c.addr, s.addr, f.cport, f.sport, f.cseq, f.sseq, flags, 2048, opts, pay, c.ttl, c.tos,
                    f.cident, True, f.cflow)
        f.cseq = (f.cseq + len(pay) + (1 if flags & FIN else 0)) & M32
        return s.e_c2s + ip

    def s2c(f, flags, pay, now, tos=0):
        c, s = f.c, f.s
        f.sident = (f.sident + 1) & 0xffff
        opts = ts_opt(now // 997 + f.sport) if f.ts else b''
        ip = tcp_ip(s.addr, c.addr, f.sport, f.cport, f.sseq, f.cseq, flags, 501, opts, pay, s.ttl, tos,
                    f.sident if s.os != 'L' else 0, True, f.sflow)
        f.sseq = (f.sseq + len(pay) + (1 if flags & FIN else 0)) & M32
        return s.e_s2c + ip

    def data_len():
        k = rnd()
        if k < 0.2:
            return 0
        if k < 0.65:
            return rint(40, 300)
        if k < 0.87:
            return rint(300, 1000)
        return 1448 if rnd() < 0.7 else rint(1000, 1448)

    # ------------------------------------------------------------------ items
    def attempt(now):
        k = rnd()
        v6 = rnd() < 0.15
        kind = 'lb' if k < 0.35 else ('pod' if k < 0.88 else 'win')
        cl = clients[(kind, v6)]
        c = cl[int(rnd() * len(cl))]
        s = pick_server(v6)
        pi = int(rnd() * len(s.ports)) if (kind == 'lb' or rnd() < 0.5) else 0
        port = s.ports[pi]
        state = s.pstate[pi] if s.state in ('up', 'acl') else s.state
        if state == 'open' and s.restart and s.restart[0] <= now < s.restart[1]:
            state = 'closed'
        distinct.add((s.addr[0], port))
        sport = c.port
        c.port = c.port + 1 if c.port < c.hi else c.lo
        c.used += 1
        if c.used > c.hi - c.lo:
            sys.exit('a client ran out of fresh ephemeral ports: more clients needed')
        isn = bits(32)
        c.ident = (c.ident + 1) & 0xffff
        flow = (bits(20) | 1) if c.os == 'L' else 0
        opts = syn_opts(c)
        syn_ip = tcp_ip(c.addr, s.addr, sport, port, isn, 0, SYN, 64240 if c.os == 'L' else 65535, opts, b'',
                        c.ttl, c.tos, c.ident, True, flow)
        syn_frame = s.e_c2s + syn_ip
        sched_ = (LINUX_SYN_RETX if c.os == 'L' else WINDOWS_SYN_RETX)
        # The SYN times the client's timeout allows (each retransmission a few ms late: timer slack).
        syn_times = [now]
        for x in sched_:
            if x * SEC >= c.timeout:
                break
            syn_times.append(now + x * SEC + rint(0, 4000))
        srtt = s.rtt + rint(0, s.rtt // 10 + 20)
        sflow = (bits(20) | 1) if s.labels else 0
        events = []     # (time, frame, role) role: 'syn', 'reply', 'late', 'other'
        verdict = None
        kept = None

        def syn_at(t):
            if t == now:
                events.append((t, syn_frame, 'syn'))
                return
            c.ident = (c.ident + 1) & 0xffff
            ip = tcp_ip(c.addr, s.addr, sport, port, isn, 0, SYN, 64240 if c.os == 'L' else 65535,
                        syn_opts(c) if c.os == 'L' else opts, b'', c.ttl, c.tos, c.ident, True, flow)
            events.append((t, s.e_c2s + ip, 'syn'))

        def reply_tcp(t, flags, seq, ack, win, o, tos=0):
            ip = tcp_ip(s.addr, c.addr, port, sport, seq, ack, flags, win, o, b'', s.ttl, tos,
                        0 if s.os == 'L' else bits(16), True, sflow)
            return s.e_s2c + ip

        if state == 'open':
            verdict = 'open'
            lost = 0
            u = rnd()
            if len(syn_times) >= 2 and u < 0.03:
                lost = 1 if (len(syn_times) == 2 or rnd() < 0.8) else 2
                mix['syn_lost'] += 1
            for t in syn_times[:lost + 1]:
                syn_at(t)
            last = syn_times[lost]
            sisn = bits(32)
            sa_opts = synack_opts(s, c)
            sa_win = {'L': 65160, 'W': 65535, 'A': 28960}[s.os]
            t_sa = last + srtt
            synack_lost = (lost == 0 and kind == 'pod' and c.timeout >= 5 * SEC and rnd() < 0.004)
            events.append((t_sa, reply_tcp(t_sa, SYN | ACK, sisn, (isn + 1) & M32, sa_win, sa_opts), 'reply'))
            mix['syn_acks'] += 1
            if synack_lost:
                # The client's firewall drops the SYN-ACKs (after the tap): the client retransmits at 1 s and 3 s,
                # the server answers each, and its own SYN-ACK timer fires once more after 7 s: a late reply.
                mix['synack_lost'] += 1
                for t in syn_times[1:3]:
                    syn_at(t)
                    events.append((t + srtt, reply_tcp(t + srtt, SYN | ACK, sisn, (isn + 1) & M32, sa_win,
                                                       sa_opts), 'reply'))
                    mix['syn_acks'] += 1
                tl = t_sa + 7 * SEC + rint(0, 3000)
                events.append((tl, reply_tcp(tl, SYN | ACK, sisn, (isn + 1) & M32, sa_win, sa_opts), 'late'))
                mix['syn_acks'] += 1
            else:
                f = Flow()
                f.c, f.s, f.cport, f.sport = c, s, sport, port
                f.cseq, f.sseq = (isn + 1) & M32, (sisn + 1) & M32
                f.cflow, f.sflow = flow, sflow
                f.ts = c.os == 'L' and s.os == 'L'
                f.cident, f.sident = c.ident, bits(16)
                t = t_sa + rint(20, 200)
                if kind == 'lb' and rnd() < 0.5:
                    # Half-open check: the checker resets the connection at once.
                    rst = tcp_ip(c.addr, s.addr, sport, port, (isn + 1) & M32, 0, RST, 0, b'', b'', c.ttl, c.tos,
                                 0, True, flow)
                    events.append((t, s.e_c2s + rst, 'other'))
                    mix['half_open_checks'] += 1
                elif kind == 'lb':
                    # HTTP check: ACK, GET, response, FIN both ways, last ACK.
                    events.append((t, c2s(f, ACK, b'', t), 'other'))
                    t += rint(5, 50)
                    events.append((t, c2s(f, PSH | ACK, payload(rint(70, 140)), t), 'other'))
                    t += rint(80, 3000)
                    events.append((t, s2c(f, PSH | ACK, payload(rint(120, 600)), t), 'other'))
                    t += rint(20, 300)
                    events.append((t, c2s(f, FIN | ACK, b'', t), 'other'))
                    t += srtt
                    events.append((t, s2c(f, FIN | ACK, b'', t), 'other'))
                    t += rint(20, 200)
                    events.append((t, c2s(f, ACK, b'', t), 'other'))
                    mix['http_checks'] += 1
                else:
                    events.append((t, c2s(f, ACK, b'', t), 'other'))
                    kept = (t + 1000, f)
                    mix['kept_connections'] += 1
        elif state == 'closed':
            verdict = 'closed'
            syn_at(now)
            t = now + srtt
            tos = c.tos if s.os != 'W' else 0  # Linux / appliance stacks echo the SYN's TOS in their RST
            events.append((t, reply_tcp(t, RST | ACK, 0, (isn + 1) & M32, 0, b'', tos), 'reply'))
            mix['stack_rsts'] += 1
        elif state == 'drop':
            verdict = 'filtered'
            for t in syn_times:
                syn_at(t)
        elif state in ('reject', 'acl'):
            verdict = 'icmp-rejected'
            syn_at(now)
            if state == 'reject':
                src, hops, ttl = s.addr, s.hops, s.ttl
                if v6:
                    code = 4 if rnd() < 0.6 else 1
                else:
                    k = rnd()
                    code = 3 if k < 0.6 else (10 if k < 0.85 else 13)
                t = now + srtt
                minimal = False
                mix['icmp_from_target'] += 1
            else:
                src, hops, ttl = s.acl_rtr, s.acl_hops, s.acl_ttl
                code = 1 if v6 else 13
                t = now + max(30, srtt * hops // s.hops)
                minimal = (not v6) and rnd() < 0.2
                mix['icmp_from_router'] += 1
            q = tcp_ip(c.addr, s.addr, sport, port, isn, 0, SYN, 64240 if c.os == 'L' else 65535, opts, b'',
                       c.ttl - (hops - 1), c.tos, c.ident, True, flow)
            mix['minimal_quotes'] += minimal
            ic = icmp_ip(src, c.addr, 1 if v6 else 3, code, 0, quote_of(q, v6, minimal), ttl, 0 if v6 else 0xc0,
                         bits(16), False, 0)
            events.append((t, s.e_s2c + ic, 'reply'))
        elif state == 'down':
            verdict = 'unreachable'
            # The last router's ARP / neighbour discovery gives up after ~2.9 s: one error per SYN queued by
            # then; the client gives up at the first error.
            t_fail = now + 2_900_000 + rint(0, 20_000)
            rr = max(30, srtt * s.rtr_hops // s.hops)
            sent = [t for t in syn_times if t < t_fail + rr]
            for t in sent:
                syn_at(t)
            q = tcp_ip(c.addr, s.addr, sport, port, isn, 0, SYN, 64240 if c.os == 'L' else 65535, opts, b'',
                       c.ttl - (s.rtr_hops - 1), c.tos, c.ident, True, flow)
            body = quote_of(q, v6)
            for n in range(len(sent)):
                t = t_fail + rr + n * 40
                ic = icmp_ip(s.rtr, c.addr, 1 if v6 else 3, 3 if v6 else 1, 0, body, s.rtr_ttl,
                             0 if v6 else 0xc0, bits(16), False, 0)
                events.append((t, s.e_s2c + ic, 'reply'))
                mix['icmp_from_router'] += 1
        elif state == 'noroute':
            verdict = 'unreachable'
            syn_at(now)
            h = min(2, s.hops - 1)
            rtr = s.acl_rtr
            t = now + max(30, srtt * h // s.hops)
            q = tcp_ip(c.addr, s.addr, sport, port, isn, 0, SYN, 64240 if c.os == 'L' else 65535, opts, b'',
                       c.ttl - (h - 1), c.tos, c.ident, True, flow)
            ic = icmp_ip(rtr, c.addr, 1 if v6 else 3, 0, 0, quote_of(q, v6), (255 if v6 else 64) - (h - 1),
                         0 if v6 else 0xc0, bits(16), False, 0)
            events.append((t, s.e_s2c + ic, 'reply'))
            mix['icmp_from_router'] += 1
        else:
            raise AssertionError(state)

        events.sort(key=lambda e: e[0])
        model = [(t, 'syn' if role == 'syn' else 'reply') for t, _, role in events if role in ('syn', 'reply')]
        d = deadline_of(model)
        nsyn = 0
        for t, frame, role in events:
            if role == 'syn':
                nsyn += 1
            elif role == 'reply':
                # Every reply must fall well inside the attempt's window, every late one well outside it.
                assert t < d - 50_000, (state, t - now, d - now)
                counts['replies'] += 1
            elif role == 'late':
                assert t > d + 200_000, (state, t - now, d - now)
                counts['late_replies'] += 1
            else:
                assert t < d - 50_000
            sched(t, frame)
        if kept:
            # Torn down (or quoted by an ICMP error) only once the attempt's window is well over.
            kept[1].safe = d + 2 * SEC
            pending.append(kept)
        counts['attempts'] += 1
        counts['retransmissions'] += nsyn - 1
        counts['retransmitted_attempts'] += nsyn > 1
        verdicts[verdict] = verdicts.get(verdict, 0) + 1
        mix['syn_frames'] += nsyn
        mix['ipv6_attempts'] += v6
        mix['dscp_attempts'] += c.tos != 0
        mix['windows_attempts'] += c.os == 'W'

    def data(now):
        f = pool[int(rnd() * len(pool))]
        n = data_len()
        if rnd() < 0.55:
            put(now, s2c(f, (PSH | ACK) if n and rnd() < 0.5 else ACK, payload(n) if n else b'', now))
        else:
            put(now, c2s(f, (PSH | ACK) if n and rnd() < 0.5 else ACK, payload(n) if n else b'', now))
        mix['data_frames'] += 1

    def teardown(now):
        # A flow past its attempt's window: FIN both ways, or an RST (counted by synprobe as other_resets).
        for _ in range(8):
            i = int(rnd() * len(pool))
            f = pool[i]
            if f.safe <= now:
                break
        else:
            return 0
        pool[i] = pool[-1]
        pool.pop()
        if rnd() < 0.25:
            if rnd() < 0.5:
                if f.sseq == 0:
                    f.sseq = 1
                frame = s2c(f, RST | ACK, b'', now)
            else:
                if f.cseq == 0:
                    f.cseq = 1
                frame = c2s(f, RST | ACK, b'', now)
            put(now, frame)
            counts['other_resets'] += 1
            mix['teardown_rsts'] += 1
            return 1
        put(now, c2s(f, FIN | ACK, b'', now))
        t = now + f.s.rtt
        sched(t, s2c(f, FIN | ACK, b'', t))
        sched(t + 100, c2s(f, ACK, b'', t + 100))
        mix['fin_closes'] += 1
        mix['data_frames'] += 3
        return 3

    DNS4, DNS6 = a4(10, 96, 0, 10), a6(0xfd00, 0x96, 0, 0, 0, 0, 0, 0xa)
    NTP4 = a4(10, 0, 0, 123)
    STATSD4 = a4(10, 0, 0, 125)
    e_dns4 = eth_prefix(ROUTER_B, ROUTER_A, False)
    e_dns6 = eth_prefix(ROUTER_B, ROUTER_A, True)
    e_back4 = eth_prefix(ROUTER_A, ROUTER_B, False)
    e_back6 = eth_prefix(ROUTER_A, ROUTER_B, True)

    def dns(now):
        v6 = rnd() < 0.15
        cl = clients[('pod', v6)]
        c = cl[int(rnd() * len(cl))]
        srv = DNS6 if v6 else DNS4
        sp = rint(1024, 65535)
        q = payload(rint(30, 60))
        put(now, e_dns6 + udp_ip(c.addr, srv, sp, 53, q, c.ttl, 0, bits(16), False, bits(20))
            if v6 else e_dns4 + udp_ip(c.addr, srv, sp, 53, q, c.ttl, 0, bits(16), False, 0))
        t = now + rint(100, 3000)
        a = payload(rint(60, 400))
        sched(t, (e_back6 + udp_ip(srv, c.addr, 53, sp, a, 63, 0, 0, False, bits(20))) if v6 else
              (e_back4 + udp_ip(srv, c.addr, 53, sp, a, 63, 0, bits(16), False, 0)))
        mix['dns_frames'] += 2
        return 2

    def ntp(now):
        c = clients[('pod', False)][rint(0, 2999)]
        sp = 123
        put(now, e_dns4 + udp_ip(c.addr, NTP4, sp, 123, payload(48), c.ttl, 0xb8, bits(16), True))
        t = now + rint(200, 900)
        sched(t, e_back4 + udp_ip(NTP4, c.addr, 123, sp, payload(48), 63, 0xb8, bits(16), True))
        mix['ntp_frames'] += 2
        return 2

    def statsd(now):
        c = clients[('pod', False)][rint(0, 2999)]
        put(now, e_dns4 + udp_ip(c.addr, STATSD4, rint(40000, 60000), 8125, payload(rint(20, 200)), c.ttl, 0,
                                 bits(16), True))
        mix['statsd_frames'] += 1
        return 1

    def ping(now):
        v6 = rnd() < 0.15
        cl = clients[('lb', v6)]
        c = cl[int(rnd() * len(cl))]
        s = pick_server(v6)
        ident, sq = bits(16), bits(16)
        body = payload(56)
        if v6:
            put(now, s.e_c2s + icmp_ip(c.addr, s.addr, 128, 0, ident << 16 | sq, body, c.ttl, 0, 0, False,
                                       bits(20)))
        else:
            put(now, s.e_c2s + icmp_ip(c.addr, s.addr, 8, 0, ident << 16 | sq, body, c.ttl, 0, bits(16), True))
        mix['echo_frames'] += 1
        if s.state in ('up', 'acl'):
            t = now + s.rtt
            s.ident = (s.ident + 1) & 0xffff
            if v6:
                sched(t, s.e_s2c + icmp_ip(s.addr, c.addr, 129, 0, ident << 16 | sq, body, s.ttl, 0, 0, False,
                                           bits(20) | 1 if s.labels else 0))
            else:
                sched(t, s.e_s2c + icmp_ip(s.addr, c.addr, 0, 0, ident << 16 | sq, body, s.ttl, 0, s.ident,
                                           False))
            mix['echo_frames'] += 1
            return 2
        return 1

    def arp(now):
        j = rint(0, 5000)
        sha, spa = mac(0x300000 + j), bytes((172, 16 + (j >> 16), (j >> 8) & 255, j & 255))
        tpa = bytes((172, 16, rint(0, 198), rint(1, 254)))
        req = (b'\xff' * 6 + sha + b'\x08\x06' + struct.pack('>HHBBH', 1, 0x0800, 6, 4, 1) + sha + spa
               + bytes(6) + tpa)
        put(now, req)
        counts['not_ip'] += 1
        mix['arp_frames'] += 1
        if rnd() < 0.8:
            tha = mac(0x310000 + j)
            rep = (sha + tha + b'\x08\x06' + struct.pack('>HHBBH', 1, 0x0800, 6, 4, 2) + tha + tpa + sha + spa)
            sched(now + rint(50, 400), rep)
            counts['not_ip'] += 1
            mix['arp_frames'] += 1
            return 2
        return 1

    def icmp_udp(now):
        # A DNS query or traceroute probe to a host that answers port unreachable.
        v6 = rnd() < 0.15
        cl = clients[('pod', v6)]
        c = cl[int(rnd() * len(cl))]
        s = pick_server(v6)
        sp, dp = rint(33000, 34000), rint(33434, 33534)
        u = udp_ip(c.addr, s.addr, sp, dp, payload(32), c.ttl, 0, bits(16), False, bits(20) if v6 else 0)
        put(now, s.e_c2s + u)
        qu = udp_ip(c.addr, s.addr, sp, dp, payload(32), c.ttl - (s.hops - 1), 0, bits(16), False,
                    bits(20) if v6 else 0)
        t = now + s.rtt
        sched(t, s.e_s2c + icmp_ip(s.addr, c.addr, 1 if v6 else 3, 4 if v6 else 3, 0, quote_of(qu, v6), s.ttl,
                                   0 if v6 else 0xc0, bits(16), False, 0))
        mix['icmp_quoting_udp'] += 1
        return 2

    ASYM4 = [a4(10, 250, i // 250, i % 250 + 1) for i in range(2000)]
    ASYM6 = [a6(0xfd00, 0xc, 0xfa, 0, 0, 0, 0, i + 1) for i in range(300)]

    def stray(now):
        k = rnd()
        if k < 0.6:
            # SYN-ACK / RST for a SYN that went around the tap (ECMP): clients in a subnet no attempt comes from.
            v6 = rnd() < 0.15
            c = (ASYM6 if v6 else ASYM4)[rint(0, (300 if v6 else 2000) - 1)]
            while True:
                s = pick_server(v6)
                if s.state == 'up':
                    break
            port = s.ports[rint(0, len(s.ports) - 1)]
            sp = rint(32768, 60999)
            if k < 0.4:
                ip = tcp_ip(s.addr, c, port, sp, bits(32), bits(32), SYN | ACK, 65160, b'\x02\x04\x05\xb4', b'',
                            s.ttl, 0, 0, True, bits(20) | 1 if s.labels else 0)
                mix['stray_synacks'] += 1
            else:
                ip = tcp_ip(s.addr, c, port, sp, 0, bits(32), RST | ACK, 0, b'', b'', s.ttl, 0, 0, True,
                            bits(20) | 1 if s.labels else 0)
                mix['stray_rsts'] += 1
            put(now, s.e_s2c + ip)
            counts['stray_tcp'] += 1
            return 1
        # "Fragmentation needed" / "packet too big" from a router, quoting a full-sized data segment of a flow
        # past its attempt's window.
        for _ in range(8):
            f = pool[int(rnd() * len(pool))]
            if f.safe <= now:
                break
        else:
            return 0
        c, s = f.c, f.s
        hops = max(1, s.hops - 1)
        opts = ts_opt(now // 1000 + f.cport) if f.ts else b''
        seg = tcp_ip(c.addr, s.addr, f.cport, f.sport, f.cseq, f.sseq, PSH | ACK, 2048, opts, payload(1400),
                     c.ttl - (hops - 1), c.tos, f.cident, True, f.cflow)
        rtr = s.rtr or s.acl_rtr or (routers_v6 if s.v6 else routers_v4)[0]
        if s.v6:
            ic = icmp_ip(rtr, c.addr, 2, 0, rint(1280, 1450), quote_of(seg, True), 64 - (hops - 1), 0, 0, False,
                         0)
        else:
            ic = icmp_ip(rtr, c.addr, 3, 4, rint(1280, 1450), quote_of(seg, False), 255 - (hops - 1), 0xc0,
                         bits(16), False)
        put(now, s.e_s2c + ic)
        counts['stray_icmp'] += 1
        mix['stray_pmtu'] += 1
        return 1

    # ------------------------------------------------------------------ main loop
    MAX_ITEM = 16
    now = 0
    mean_gap = 1.75 * SEC / 15000.0
    gmax = int(2 * mean_gap)
    POOL_MAX = 9000
    while True:
        committed = out.frames + len(heap)
        if committed >= nframes:
            break
        now += rint(0, gmax)
        while heap and heap[0][0] <= now:
            t, _, fr = pop(heap)
            put(t, fr)
        while pending and pending[0][0] <= now:
            pool.append(pending.popleft()[1])
        if nframes - committed < MAX_ITEM:
            data(now)
            continue
        k = rnd()
        if k < 0.30:
            attempt(now)
        elif k < 0.905:
            if len(pool) > POOL_MAX and teardown(now):
                continue
            data(now)
        elif k < 0.915:
            if not teardown(now):
                data(now)
        elif k < 0.95:
            dns(now)
        elif k < 0.953:
            ntp(now)
        elif k < 0.965:
            statsd(now)
        elif k < 0.980:
            ping(now)
        elif k < 0.990:
            arp(now)
        elif k < 0.995:
            icmp_udp(now)
        else:
            if not stray(now):
                data(now)
    while heap:
        t, _, fr = pop(heap)
        put(t, fr)
    out.close()
    if out.frames != nframes:
        sys.exit('internal error: %d frames written, %d asked' % (out.frames, nframes))
    c = counts
    truth = {
        'generator': 'gen-workloads.py mesh',
        'seed': seed,
        'counts': {
            'frames': out.frames,
            'not_ip': c['not_ip'],
            'malformed': 0,
            'attempts': c['attempts'],
            'by_verdict': dict(sorted(verdicts.items())),
            'retransmitted_attempts': c['retransmitted_attempts'],
            'retransmissions': c['retransmissions'],
            'replies': c['replies'],
            'stray_tcp': c['stray_tcp'],
            'stray_icmp': c['stray_icmp'],
            'other_resets': c['other_resets'],
            'late_replies': c['late_replies'],
            'rebuilt_from_icmp': 0,
            'evicted': 0,
        },
        'mix': dict(mix, file_bytes=out.bytes, duration_secs=out.last / SEC,
                    distinct_server_ports=len(distinct), servers=len(servers),
                    server_ports_defined=sum(len(s.ports) for s in servers)),
    }
    return truth


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest='mode', required=True)
    a = sub.add_parser('scan')
    a.add_argument('out')
    a.add_argument('--syns', type=int, default=1_000_000)
    a.add_argument('--seed', type=int, default=1)
    a.add_argument('--gap-us', type=int, default=10, help='mean gap between SYNs (uniform +-20%%)')
    b = sub.add_parser('mesh')
    b.add_argument('out')
    b.add_argument('--frames', type=int, default=5_000_000)
    b.add_argument('--seed', type=int, default=1)
    args = ap.parse_args()
    t0 = time.time()
    if args.mode == 'scan':
        truth = gen_scan(args.out, args.syns, args.seed, args.gap_us)
    else:
        truth = gen_mesh(args.out, args.frames, args.seed)
    truth['mix']['generation_secs'] = round(time.time() - t0, 1)
    base = args.out[:-5] if args.out.endswith('.pcap') else args.out
    with open(base + '.truth.json', 'w') as f:
        json.dump(truth, f, indent=1)
        f.write('\n')
    print(json.dumps({'file': args.out, 'counts': truth['counts'], 'generation_secs': truth['mix']['generation_secs'],
                      'file_bytes': truth['mix']['file_bytes'],
                      'distinct_server_ports': truth['mix']['distinct_server_ports']}))


if __name__ == '__main__':
    main()
