//! Shared helpers for synprobe's integration tests.
