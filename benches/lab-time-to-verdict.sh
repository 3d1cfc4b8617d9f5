#!/usr/bin/env bash
# Time to verdict per lab scenario: synprobe (default plan and --quick) next to nmap -sS -Pn --reason, in one
# hyperfine run per scenario. Builds its own lab of network namespaces (client -- r1 -- r2 -- server, addresses in
# 198.18.0.0/15 only), so it needs root; every probe stays inside the lab. Every kernel default is kept, ICMP rate
# limits included: each run is prepared by a pause (PAUSE seconds, default 6, not timed) so that every command,
# synprobe's and nmap's alike, starts with the routers' ICMP buckets full, as a first probe in the wild would.
# Run by hand:
#   sudo benches/lab-time-to-verdict.sh [RUNS]        (results in target/lab-bench/, a table on stdout)
#   sudo ONLY="unreachable-route arp-failure" benches/lab-time-to-verdict.sh 10    (just those scenarios)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-10}
PAUSE=${PAUSE:-6}
for tool in hyperfine nmap ip iptables ping; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install -y hyperfine nmap iproute2 iptables iputils-ping)"; exit 1; }
done
cargo build --release -q -p synprobe-cli
BIN=$PWD/target/release/synprobe
OUT=$PWD/target/lab-bench${ONLY:+-only}; mkdir -p "$OUT"
P=spbench$$
. benches/lab-chain.sh
cleanup() { lab_chain_down; }
trap cleanup EXIT
lab_chain_up
ip netns exec "$P-server" python3 -c 'import socket,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("198.18.2.2", 80)); s.listen(128)
while True:
    c,_=s.accept(); c.close()' &
ip netns exec "$P-r2" iptables -A FORWARD -p tcp --dport 82 -j REJECT --reject-with tcp-reset
ip netns exec "$P-server" iptables -A INPUT -p tcp --dport 83 -j REJECT --reject-with tcp-reset
ip netns exec "$P-r1" iptables -A FORWARD -p tcp --dport 85 -j REJECT --reject-with icmp-admin-prohibited
ip netns exec "$P-r1" iptables -A FORWARD -p tcp --dport 87 -j DROP
ip netns exec "$P-server" iptables -A INPUT -p tcp --dport 88 -j DROP
# Route errors: an `unreachable` and a `prohibit` route on r1, and an address on the server's link nobody owns
# (r2's ARP fails after 3 s).
ip -n "$P-r1" route add unreachable 198.18.2.77/32
ip -n "$P-r1" route add prohibit 198.18.2.78/32
sleep 0.5
RTT=$(ip netns exec "$P-client" ping -c 20 -i 0.01 -q 198.18.2.2 | awk -F/ '/rtt/{print $5}')
echo "lab: client -- r1 -- r2 -- server (3 hops), ping rtt avg ${RTT} ms"
run() { ip netns exec "$P-client" "$@"; }
printf '| scenario | synprobe verdict | synprobe (ms) | synprobe --quick (ms) | nmap -sS (ms) | nmap says | time to verdict: synprobe / --quick (ms, median) |\n|---|---|---|---|---|---|---|\n' > "$OUT/table.md"
for spec in "open:80" "closed:81" "rst-at-r2:82" "rst-on-host:83" "icmp-admin-at-r1:85" "drop-at-r1:87" \
    "drop-on-host:88" "unreachable-route:443:198.18.2.77" "prohibit-route:443:198.18.2.78" \
    "arp-failure:443:198.18.2.99"; do
  IFS=: read -r name port addr <<<"$spec"
  addr=${addr:-198.18.2.2}
  # ONLY="drop-at-r1 arp-failure" runs just those scenarios.
  if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then continue; fi
  # synprobe exits with its verdict's code (10-14): not a failure here.
  sleep "$PAUSE"
  verdict=$( (run "$BIN" "$addr" "$port" --json || true) | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["verdict"])')
  sleep "$PAUSE"
  nmapsays=$( (run nmap -sS -Pn -n --reason -p "$port" "$addr" || true) | awk -v p="$port/tcp" '$1==p{print $2" ("$3" "$4" "$5" "$6")"}')
  hyperfine -N --warmup 1 --runs "$RUNS" -i --prepare "sleep $PAUSE" --export-json "$OUT/$name.json" \
    -n synprobe "ip netns exec $P-client $BIN $addr $port" \
    -n quick "ip netns exec $P-client $BIN $addr $port --quick" \
    -n nmap "ip netns exec $P-client nmap -sS -Pn -n --reason -p $port $addr" >/dev/null
  # The verdict's own latency (first packet sent to verdict), from --json, median of 10 runs each.
  ttv() { for _ in $(seq 10); do sleep "$PAUSE"; (run "$BIN" "$addr" "$port" --json "$@" || true) | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["time_to_verdict_ms"])'; done | sort -g | awk '{a[NR]=$1} END{printf "%.2f", (a[5]+a[6])/2}'; }
  t_full=$(ttv); t_quick=$(ttv --quick)
  python3 - "$OUT/$name.json" "$name" "$verdict" "$nmapsays" "$t_full" "$t_quick" >> "$OUT/table.md" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
ms = {r["command"]: (r["median"] * 1000, r["stddev"] * 1000) for r in d["results"]}
f = lambda k: "%.1f ± %.1f" % ms[k]
print(f"| {sys.argv[2]} | {sys.argv[3]} | {f('synprobe')} | {f('quick')} | {f('nmap')} | {sys.argv[4]} | {sys.argv[5]} / {sys.argv[6]} |")
PY
done
# The process's fixed cost (start, libpcap open, raw sockets), for the 1.5 RTT + 5 ms budget of --quick.
hyperfine -N --warmup 3 --runs "$RUNS" -i --export-json "$OUT/startup.json" \
  -n "synprobe --version" "ip netns exec $P-client $BIN --version" >/dev/null
python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("| process start (synprobe --version) | | %.1f ± %.1f | | | | |" % (r["median"]*1000, r["stddev"]*1000))' "$OUT/startup.json" >> "$OUT/table.md"
cat "$OUT/table.md"
