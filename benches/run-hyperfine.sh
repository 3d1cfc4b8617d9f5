#!/usr/bin/env bash
# Whole-program benchmark of `synprobe replay`, run by hand (not in CI). See BENCHMARKS.md for the results.
#
# 1. Generates realistic captures with their ground truth (benches/src/generate.rs) into $DIR unless present:
#    5,000,000 frames (about 2.5 GB), 1,000,000 frames, 500,000 frames, and the 1 M file as pcapng; and two
#    workloads from an independent generator (benches/gen-workloads.py, Python, no code shared with synprobe):
#    mesh.pcap (5,000,000 frames of a datacenter tap, 228,000 distinct server:ports, 60,000 servers) and
#    scan.pcap (1,000,000 SYNs to distinct addresses at 100,000/s, 10% answered SYN-ACK, 5% RST).
# 2. Checks that `synprobe replay --json` reports exactly the generator's truth on each.
# 3. Builds a libpcap count-only loop (pcap_open_offline + pcap_next_ex, nothing else) with gcc.
# 4. One hyperfine run (warm page cache) comparing: synprobe replay --json on the 5 M file (to /dev/null); the
#    libpcap loop on the 5 M file; both again on mesh.pcap and scan.pcap; tcpdump with a SYN/RST/ICMP filter
#    on the 5 M file (written to /dev/null); tshark with the equivalent display filter on the 500 k file;
#    synprobe on the 500 k file and on the 1 M pcapng file; and synprobe on the 5 M file with every report left
#    out by --host (analysis without output).
# 5. Peak RSS of each (/usr/bin/time -v), and synprobe's on the 1 M and 5 M files; with LONG=1, also on a
#    20,000,000-frame file (about 10 GB, generated and checked against its truth too) to show that memory does
#    not grow with the length of the capture.
# 6. Prints a table: seconds, frames/s, ratios against the libpcap loop and tshark, peak RSS.
#
# Usage: benches/run-hyperfine.sh            (DIR=/tmp/synprobe-bench RUNS=5 WARMUP=1 LONG=1 to change)
# Needs: cargo, gcc, libpcap-dev, hyperfine, tcpdump, tshark (editcap), GNU time, python3.
# Delete $DIR afterwards: the files are large and are not part of the repository.
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=${DIR:-/tmp/synprobe-bench}
RUNS=${RUNS:-5}
WARMUP=${WARMUP:-1}
SEED=${SEED:-1}
mkdir -p "$DIR"

for tool in cargo gcc hyperfine tcpdump tshark editcap python3 /usr/bin/time; do
    command -v "$tool" >/dev/null || {
        echo "run-hyperfine: $tool is missing (apt-get install -y hyperfine tcpdump tshark time gcc libpcap-dev python3)" >&2
        exit 1
    }
done

echo "== building synprobe and the generator (release)"
cargo build --release -q -p synprobe-cli -p synprobe-bench
SYNPROBE=$PWD/target/release/synprobe
GEN=$PWD/target/release/synprobe-gen

gen() { # frames name
    if [ ! -s "$DIR/$2.pcap" ] || [ ! -s "$DIR/$2.truth.json" ]; then
        echo "== generating $DIR/$2.pcap ($1 frames)"
        "$GEN" --packets "$1" --seed "$SEED" --truth "$DIR/$2.truth.json" "$DIR/$2.pcap"
    fi
}
gen 5000000 5m
gen 1000000 1m
gen 500000 500k
for w in mesh scan; do
    if [ ! -s "$DIR/$w.pcap" ] || [ ! -s "$DIR/$w.truth.json" ]; then
        echo "== generating $DIR/$w.pcap (benches/gen-workloads.py $w)"
        python3 benches/gen-workloads.py "$w" "$DIR/$w.pcap" --seed "$SEED"
    fi
done
if [ ! -s "$DIR/1m.pcapng" ]; then
    editcap -F pcapng "$DIR/1m.pcap" "$DIR/1m.pcapng"
fi

echo "== checking synprobe's counts against the generator's truth"
check() { # capture truth
    "$SYNPROBE" replay --json "$1" | tail -n 1 >"$DIR/summary.json"
    python3 - "$DIR/summary.json" "$2" "$1" <<'EOF'
import json, sys
summary, truth = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))["counts"]
bad = [k for k, v in truth.items() if k != "by_verdict" and summary[k] != v]
if summary["totals"]["by_verdict"] != truth["by_verdict"]:
    bad.append("by_verdict")
if bad:
    sys.exit(f"{sys.argv[3]}: synprobe differs from the truth in {bad}")
print(f"{sys.argv[3]}: {summary['attempts']} attempts {truth['by_verdict']}, "
      f"{summary['retransmitted_attempts']} retransmitted, {summary['stray_tcp'] + summary['stray_icmp']} strays: as generated")
EOF
}
check "$DIR/5m.pcap" "$DIR/5m.truth.json"
check "$DIR/1m.pcap" "$DIR/1m.truth.json"
check "$DIR/500k.pcap" "$DIR/500k.truth.json"
check "$DIR/1m.pcapng" "$DIR/1m.truth.json"
check "$DIR/mesh.pcap" "$DIR/mesh.truth.json"
check "$DIR/scan.pcap" "$DIR/scan.truth.json"

echo "== building the libpcap count-only loop"
cat >"$DIR/pcap_count.c" <<'EOF'
/* Count the records of a capture with libpcap: pcap_open_offline + pcap_next_ex, nothing else. */
#include <pcap/pcap.h>
#include <stdio.h>
int main(int argc, char **argv) {
    char err[PCAP_ERRBUF_SIZE];
    if (argc != 2) { fprintf(stderr, "usage: pcap_count FILE\n"); return 2; }
    pcap_t *p = pcap_open_offline(argv[1], err);
    if (!p) { fprintf(stderr, "%s\n", err); return 1; }
    struct pcap_pkthdr *h;
    const u_char *d;
    unsigned long n = 0;
    int r;
    while ((r = pcap_next_ex(p, &h, &d)) == 1) n++;
    printf("%lu\n", n);
    pcap_close(p);
    return r == PCAP_ERROR_BREAK ? 0 : 1;
}
EOF
gcc -O2 -o "$DIR/pcap_count" "$DIR/pcap_count.c" -lpcap
[ "$("$DIR/pcap_count" "$DIR/5m.pcap")" = 5000000 ]

FILTER='tcp[tcpflags] & (tcp-syn|tcp-rst) != 0 or icmp or icmp6'
DFILTER='tcp.flags.syn == 1 || tcp.flags.reset == 1 || icmp || icmpv6'
MESH_FRAMES=$("$DIR/pcap_count" "$DIR/mesh.pcap")
SCAN_FRAMES=$("$DIR/pcap_count" "$DIR/scan.pcap")
names=(synprobe-5m libpcap-count-5m tcpdump-5m tshark-500k synprobe-500k synprobe-1m-pcapng synprobe-5m-judge-only
    synprobe-mesh libpcap-count-mesh synprobe-scan libpcap-count-scan)
frames=(5000000 5000000 5000000 500000 500000 1000000 5000000
    "$MESH_FRAMES" "$MESH_FRAMES" "$SCAN_FRAMES" "$SCAN_FRAMES")
cmds=(
    "$SYNPROBE replay --json $DIR/5m.pcap > /dev/null"
    "$DIR/pcap_count $DIR/5m.pcap > /dev/null"
    "tcpdump -nn -r $DIR/5m.pcap -w /dev/null '$FILTER' 2> /dev/null"
    "tshark -n -r $DIR/500k.pcap -Y '$DFILTER' > /dev/null 2>&1"
    "$SYNPROBE replay --json $DIR/500k.pcap > /dev/null"
    "$SYNPROBE replay --json $DIR/1m.pcapng > /dev/null"
    # Every attempt matched and judged, none written: --host selects an address the file does not hold.
    "$SYNPROBE replay --json --host 192.0.2.1 $DIR/5m.pcap > /dev/null"
    "$SYNPROBE replay --json $DIR/mesh.pcap > /dev/null"
    "$DIR/pcap_count $DIR/mesh.pcap > /dev/null"
    "$SYNPROBE replay --json $DIR/scan.pcap > /dev/null"
    "$DIR/pcap_count $DIR/scan.pcap > /dev/null"
)

echo "== warming the page cache"
cat "$DIR"/5m.pcap "$DIR"/1m.pcap "$DIR"/500k.pcap "$DIR"/1m.pcapng "$DIR"/mesh.pcap "$DIR"/scan.pcap >/dev/null

echo "== hyperfine (warmup $WARMUP, $RUNS runs each)"
args=()
for i in "${!cmds[@]}"; do
    args+=(-n "${names[$i]}" "${cmds[$i]}")
done
hyperfine --warmup "$WARMUP" --runs "$RUNS" --export-json "$DIR/hyperfine.json" \
    --export-markdown "$DIR/hyperfine.md" "${args[@]}"

echo "== peak RSS (/usr/bin/time -v)"
: >"$DIR/rss.tsv"
rss() { # name command
    /usr/bin/time -v bash -c "$2" 2>"$DIR/time.txt" >/dev/null
    kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$DIR/time.txt")
    printf '%s\t%s\n' "$1" "$kb" >>"$DIR/rss.tsv"
}
for i in "${!cmds[@]}"; do
    rss "${names[$i]}" "${cmds[$i]}"
done
rss synprobe-1m "$SYNPROBE replay --json $DIR/1m.pcap > /dev/null"
rss synprobe-1m-text "$SYNPROBE replay $DIR/1m.pcap > /dev/null"
rss synprobe-5m-text "$SYNPROBE replay $DIR/5m.pcap > /dev/null"
long=()
if [ "${LONG:-0}" = 1 ]; then
    gen 20000000 20m
    check "$DIR/20m.pcap" "$DIR/20m.truth.json"
    rss synprobe-20m "$SYNPROBE replay --json $DIR/20m.pcap > /dev/null"
    long=(synprobe-20m)
fi

echo "== results"
python3 - "$DIR/hyperfine.json" "$DIR/rss.tsv" "${names[*]}" "${frames[*]}" "${long[*]}" <<'EOF'
import json, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
rss = dict(line.split("\t") for line in open(sys.argv[2]).read().split("\n") if line)
frames = dict(zip(sys.argv[3].split(), map(int, sys.argv[4].split())))
pps = {n: frames[n] / results[n]["mean"] for n in frames}
# Each synprobe run against the libpcap loop on the same file (the 5 M file's for the generator's others).
def loop(n):
    for w in ("mesh", "scan"):
        if n.endswith("-" + w):
            return "libpcap-count-" + w
    return "libpcap-count-5m"
print(f"{'command':<22} {'frames':>9} {'mean s':>8} {'± s':>6} {'min s':>7} {'M frames/s':>10} "
      f"{'x libpcap':>9} {'x tshark':>9} {'peak RSS MiB':>12}")
for n in frames:
    r = results[n]
    print(f"{n:<22} {frames[n]:>9} {r['mean']:>8.3f} {r['stddev']:>6.3f} {r['min']:>7.3f} {pps[n] / 1e6:>10.3f} "
          f"{pps[n] / pps[loop(n)]:>9.3f} {pps[n] / pps['tshark-500k']:>9.1f} "
          f"{int(rss[n]) / 1024:>12.1f}")
for n in ("synprobe-1m", "synprobe-1m-text", "synprobe-5m-text", *sys.argv[5].split()):
    print(f"{n:<20} peak RSS {int(rss[n]) / 1024:.1f} MiB")
EOF
echo "(raw: $DIR/hyperfine.json, $DIR/hyperfine.md, $DIR/rss.tsv; delete $DIR when done)"
