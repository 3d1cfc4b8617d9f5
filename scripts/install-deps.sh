#!/usr/bin/env bash
# Installs what synprobe needs on a fresh Debian/Ubuntu machine: libpcap (build and BPF filters), and for the
# tests: iproute2 and iptables/nftables (the network-namespace lab), tshark (trace and pcapng checks), python3
# (lab listeners), groff-base (man page rendering check), util-linux/bsdutils (`unshare`, `script` in CLI tests),
# prometheus and curl (the exporter's lab test runs a real Prometheus and scrapes with curl).
# Safe to run again. Uses sudo when not root.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    libpcap-dev pkg-config iproute2 iptables nftables tshark tcpdump nmap python3 procps groff-base util-linux \
    bsdutils prometheus curl >/dev/null
echo "install-deps: libpcap-dev, iproute2, iptables, nftables, tshark, tcpdump, nmap, python3, groff-base, prometheus, curl are installed"
