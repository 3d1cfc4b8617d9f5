#!/usr/bin/env bash
# Sweeps against nmap, in one hyperfine run per range: `synprobe HOST 1-1000` next to `nmap -sS -Pn -p1-1000`,
# and `synprobe HOST 1-65535` next to `nmap -sS -T4 -Pn -p-`. Builds its own lab of network namespaces
# (client -- r1 -- r2 -- server, addresses in 198.18.0.0/15 only), so it needs root; every probe stays inside
# the lab. Every kernel default is kept, ICMP rate limits included; each run is prepared by a pause (PAUSE
# seconds, default 3, not timed) so that every command starts with the routers' ICMP buckets full.
#
# Three labs (LAB=rules, the default, LAB=burst or LAB=plain):
#   rules: listeners on 22, 80, 443, 8080; on the host a REJECT tcp-reset (3306), an ICMP port-unreachable
#          rule over 8 ports (5432-5439, more than the host's ICMP burst of 6) and DROPs (6379, 9000-9009);
#          r2 forges RSTs for 25 and 135-139; r1 drops 445 and rejects 23 with ICMP admin-prohibited.
#          The same rules as tests/lab_sweep.rs (less its port forward to a container).
#   burst: as rules, but the host's ICMP rule covers 4 ports (5432-5435), within its ICMP burst: every ICMP
#          rejection of the lab is answered at once, none is hidden by a rate limit.
#   plain: listeners on 22, 80, 443, 8080, a REJECT tcp-reset (3306) and a DROP (9000-9009) on the host.
# `--quick` is the sweep's first pass alone (no deeper steps), timed too.
# Run by hand:
#   sudo benches/lab-sweep.sh [RUNS]             (results in target/lab-sweep-$LAB/, a table on stdout)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
PAUSE=${PAUSE:-3}
LAB=${LAB:-rules}
for tool in hyperfine nmap ip iptables python3; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install -y hyperfine nmap iproute2 iptables python3)"; exit 1; }
done
cargo build --release -q -p synprobe-cli
BIN=$PWD/target/release/synprobe
OUT=$PWD/target/lab-sweep-$LAB; mkdir -p "$OUT"
P=spsweep$$
. benches/lab-chain.sh
cleanup() {
  jobs -p | xargs -r kill 2>/dev/null || true
  lab_chain_down
}
trap cleanup EXIT
lab_chain_up
S="ip netns exec $P-server"
for p in 22 80 443 8080; do
  $S python3 -c "import socket
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('198.18.2.2', $p)); s.listen(128)
while True:
    c,_=s.accept(); c.close()" &
done
$S iptables -A INPUT -p tcp --dport 3306 -j REJECT --reject-with tcp-reset
$S iptables -A INPUT -p tcp --dport 9000:9009 -j DROP
if [ "$LAB" = rules ] || [ "$LAB" = burst ]; then
  if [ "$LAB" = rules ]; then icmp_ports=5432:5439; else icmp_ports=5432:5435; fi
  $S iptables -A INPUT -p tcp --dport "$icmp_ports" -j REJECT --reject-with icmp-port-unreachable
  $S iptables -A INPUT -p tcp --dport 6379 -j DROP
  ip netns exec "$P-r2" iptables -A FORWARD -p tcp -m multiport --dports 25,135:139 -j REJECT --reject-with tcp-reset
  ip netns exec "$P-r1" iptables -A FORWARD -p tcp --dport 445 -j DROP
  ip netns exec "$P-r1" iptables -A FORWARD -p tcp --dport 23 -j REJECT --reject-with icmp-admin-prohibited
fi
sleep 0.5
run() { ip netns exec "$P-client" "$@"; }
T=198.18.2.2
echo "lab $LAB: client -- r1 -- r2 -- server (3 hops)"
{
  echo "| lab | range | synprobe (s) | synprobe --quick (s) | nmap (s) | synprobe / nmap | --quick / nmap | synprobe peak RSS (MiB) | synprobe groups |"
  echo "|---|---|---|---|---|---|---|---|---|"
} > "$OUT/table.md"
for spec in "1-1000:-p1-1000" "1-65535:-T4 -p-"; do
  range=${spec%%:*}; nmapargs=${spec#*:}
  sleep "$PAUSE"
  groups=$(run "$BIN" "$T" "$range" --json | python3 -c 'import json,sys
for l in sys.stdin:
    v=json.loads(l)
    if v["type"]=="sweep":
        print("; ".join("%s %s%s" % (g["verdict"], g["ports"] if len(g["ports"])<30 else str(g["count"])+" ports", (" by "+g["rejecter"]["addr"]) if g["rejecter"] else "") for g in v["groups"]))' || true)
  sleep "$PAUSE"
  /usr/bin/time -o "$OUT/rss" -f "%M" ip netns exec "$P-client" "$BIN" "$T" "$range" >/dev/null 2>&1 || true
  rss=$(tail -1 "$OUT/rss")
  # synprobe exits with the highest verdict's code (14 here): not a failure.
  hyperfine -N --warmup 1 --runs "$RUNS" -i --prepare "sleep $PAUSE" --export-json "$OUT/$range.json" \
    -n synprobe "ip netns exec $P-client $BIN $T $range" \
    -n quick "ip netns exec $P-client $BIN $T $range --quick" \
    -n nmap "ip netns exec $P-client nmap -sS -Pn -n $nmapargs $T" >/dev/null
  python3 - "$OUT/$range.json" "$LAB" "$range" "$rss" "$groups" >> "$OUT/table.md" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
ms = {r["command"]: (r["median"], r["stddev"] or 0.0) for r in d["results"]}
f = lambda k: "%.2f ± %.2f" % ms[k]
rss = "%.0f" % (int(sys.argv[4]) / 1024) if sys.argv[4].isdigit() else "?"
print("| %s | %s | %s | %s | %s | %.2f× | %.2f× | %s | %s |" % (sys.argv[2], sys.argv[3], f("synprobe"),
      f("quick"), f("nmap"), ms["synprobe"][0] / ms["nmap"][0], ms["quick"][0] / ms["nmap"][0], rss,
      sys.argv[5]))
PY
done
cat "$OUT/table.md"
