#!/usr/bin/env bash
# Scrapes per second and latency of `synprobe exporter` under 50 concurrent scrapes of different targets. Builds
# its own lab of network namespaces (client -- r1 -- r2 -- server, addresses in 198.18.0.0/15 only), so it needs
# root; the exporter is allowed only the server's address, and every probe stays inside the lab. Kernel defaults
# are kept, ICMP rate limits included.
#   sudo benches/lab-exporter-bench.sh [SCRAPES]     (default 3000; results in target/lab-bench-exporter/)
#   sudo RATE=10000 benches/lab-exporter-bench.sh    (the exporter's --rate, default 500 packets/s)
# Two runs, each with 50 scrapes in flight all the time (a Python thread pool in the client namespace, keep-alive
# off: one TCP connection per scrape, as Prometheus's scrapes of /probe):
#   1. throughput: SCRAPES scrapes over 50 targets: 25 open ports (quick and full plans alternating) and 25 closed
#      ones (quick plan: the full plan's TTL walk of a closed port draws ICMP errors the routers ration);
#   2. mix: one round of 50 scrapes at once, the lab test's layout (open, closed, firewall-rst, icmp-rejected,
#      filtered), latency per verdict.
# Every answer is checked (probe_success and probe_failure_info); a wrong one is counted and printed.
set -euo pipefail
cd "$(dirname "$0")/.."
SCRAPES=${1:-3000}
RATE=${RATE:-500}   # the exporter's --rate (packets/s over all probes)
for tool in ip iptables python3; do
  command -v "$tool" >/dev/null || { echo "needs $tool"; exit 1; }
done
cargo build --release -q -p synprobe-cli
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
BIN=$TARGET_DIR/release/synprobe
OUT=$TARGET_DIR/lab-bench-exporter; mkdir -p "$OUT"
P=spexp$$
. benches/lab-chain.sh
cleanup() {
  [ -n "${EXPORTER_PID:-}" ] && kill "$EXPORTER_PID" 2>/dev/null || true
  [ -n "${LISTENER_PID:-}" ] && kill "$LISTENER_PID" 2>/dev/null || true
  lab_chain_down
}
trap cleanup EXIT
lab_chain_up
# Listeners on 1000-1024 (throughput) and 1200-1211 (mix), accepting and closing.
ip netns exec "$P-server" python3 -c 'import selectors, socket
sel = selectors.DefaultSelector()
for p in list(range(1000, 1025)) + list(range(1200, 1212)):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("198.18.2.2", p)); s.listen(512); s.setblocking(False); sel.register(s, selectors.EVENT_READ)
while True:
    for k, _ in sel.select():
        try:
            c, _ = k.fileobj.accept(); c.close()
        except OSError:
            pass' &
LISTENER_PID=$!
# The mix: as tests/lab_exporter.rs (ICMP-drawing targets spread over r1, r2 and the server).
ip netns exec "$P-r2" iptables -A FORWARD -p tcp --dport 2000:2002 -j REJECT --reject-with tcp-reset
ip netns exec "$P-r1" iptables -A FORWARD -p tcp --dport 3000:3001 -j REJECT --reject-with icmp-port-unreachable
ip netns exec "$P-r2" iptables -A FORWARD -p tcp --dport 3002:3003 -j REJECT --reject-with icmp-port-unreachable
ip netns exec "$P-server" iptables -A INPUT -p tcp --dport 3004:3007 -j REJECT --reject-with icmp-port-unreachable
ip netns exec "$P-r1" iptables -A FORWARD -p tcp --dport 4000:4014 -j DROP
ip netns exec "$P-client" "$BIN" exporter --listen 127.0.0.1:9799 --allow 198.18.2.2/32 --rate "$RATE" 2>"$OUT/exporter.log" &
EXPORTER_PID=$!
for _ in $(seq 50); do
  ip netns exec "$P-client" python3 -c 'import urllib.request; urllib.request.urlopen("http://127.0.0.1:9799/-/healthy", timeout=1)' 2>/dev/null && break
  sleep 0.2
done
DRIVER=$(cat <<'PY'
import json, sys, time, http.client
from concurrent.futures import ThreadPoolExecutor
cases = json.loads(sys.argv[1]); total = int(sys.argv[2])
def one(i):
    port, module, verdict = cases[i % len(cases)]
    t = time.perf_counter()
    c = http.client.HTTPConnection("127.0.0.1", 9799, timeout=30)
    c.request("GET", f"/probe?target=198.18.2.2:{port}&module={module}",
              headers={"X-Prometheus-Scrape-Timeout-Seconds": "5", "Connection": "close"})
    r = c.getresponse(); body = r.read().decode(); c.close()
    took = time.perf_counter() - t
    lines = set(body.splitlines())
    ok = r.status == 200 and (f"probe_success {'1.0' if verdict == 'open' else '0.0'}" in lines) and (
        verdict == "open" and "probe_failure_info" not in body
        or f'probe_failure_info{{reason="{verdict}"}} 1' in lines)
    return verdict, took, ok, f"{port} {module} expected {verdict}: HTTP {r.status}" if not ok else ""
start = time.perf_counter()
with ThreadPoolExecutor(50) as pool:
    results = list(pool.map(one, range(total)))
wall = time.perf_counter() - start
def pct(xs, q):
    xs = sorted(xs); return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000
lat = [r[1] for r in results]
out = {"scrapes": total, "wall_s": round(wall, 3), "scrapes_per_s": round(total / wall, 1),
       "p50_ms": round(pct(lat, .5), 1), "p90_ms": round(pct(lat, .9), 1), "p99_ms": round(pct(lat, .99), 1),
       "max_ms": round(max(lat) * 1000, 1), "wrong": [r[3] for r in results if not r[2]],
       "by_verdict": {v: {"n": len(xs), "p50_ms": round(pct(xs, .5), 1), "max_ms": round(max(xs) * 1000, 1)}
                      for v in sorted({r[0] for r in results}) for xs in [[r[1] for r in results if r[0] == v]]}}
print(json.dumps(out))
PY
)
run() { ip netns exec "$P-client" python3 -c "$DRIVER" "$@"; }
THROUGHPUT=$(python3 -c 'import json
c = [[p, "quick" if p % 2 else "default", "open"] for p in range(1000, 1025)]
c += [[p, "quick", "closed"] for p in range(1100, 1125)]
print(json.dumps(c))')
MIX=$(python3 -c 'import json
c = [[p, "quick", "open"] for p in range(1200, 1212)] + [[p, "quick", "closed"] for p in range(1100, 1112)]
c += [[p, "default", "firewall-rst"] for p in range(2000, 2003)] + [[p, "quick", "icmp-rejected"] for p in range(3000, 3008)]
c += [[p, "quick", "filtered"] for p in range(4000, 4015)]
assert len(c) == 50
print(json.dumps(c))')
echo "throughput: $SCRAPES scrapes, 50 in flight, 50 targets (25 open: quick and full; 25 closed: quick)"
run "$THROUGHPUT" "$SCRAPES" | tee "$OUT/throughput.json"
sleep 6   # the routers' ICMP buckets refill
echo "mix: 50 scrapes at once, 50 targets (open, closed, firewall-rst, icmp-rejected, filtered)"
run "$MIX" 50 | tee "$OUT/mix.json"
ip netns exec "$P-client" python3 -c 'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:9799/metrics").read().decode())' > "$OUT/own-metrics.txt"
grep -E '^synprobe_exporter_(overloaded|probes)_total' "$OUT/own-metrics.txt" || true
