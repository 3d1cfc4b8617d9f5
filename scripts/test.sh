#!/usr/bin/env bash
# The project's test command (README "Quick start", and CI's .ci/run): formatting, lints, every test.
# Run as root so the network-namespace lab tests run; elsewhere they say SKIP (in CI, with CI=true, they fail).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
# The engine alone, without the live and bpf features: no libpcap, pnet, nix, socket2 or netlink.
cargo build -p synprobe-core --no-default-features --locked
cargo test -p synprobe-core --no-default-features --locked --lib
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked -p synprobe-core -p synprobe-cli
