//! Benchmark helpers for synprobe.
