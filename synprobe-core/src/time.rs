//! Capture time. Everything in the engine runs on the clock of the frames, never the wall clock.

use serde::{Deserialize, Serialize};

/// A point in capture time, in nanoseconds since the Unix epoch (may be negative in damaged files).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// From seconds and a sub-second part in nanoseconds.
    pub fn from_parts(secs: i64, nanos: u32) -> Self {
        Timestamp(
            secs.saturating_mul(1_000_000_000)
                .saturating_add(i64::from(nanos)),
        )
    }

    /// From a count of microseconds since the epoch.
    pub fn from_micros(micros: i64) -> Self {
        Timestamp(micros.saturating_mul(1_000))
    }

    /// Nanoseconds since the epoch.
    pub fn as_nanos(self) -> i64 {
        self.0
    }

    /// `self + d`, saturating.
    pub fn plus(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_add(d.0))
    }

    /// The signed span from `earlier` to `self`, saturating.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }
}

/// A signed span of capture time in nanoseconds.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Duration(pub i64);

impl Duration {
    /// From milliseconds.
    pub const fn from_millis(ms: i64) -> Self {
        Duration(ms * 1_000_000)
    }

    /// From fractional seconds (saturating; NaN becomes zero).
    pub fn from_secs_f64(s: f64) -> Self {
        Duration((s * 1e9) as i64)
    }

    /// As fractional milliseconds.
    pub fn as_millis_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }

    /// As fractional seconds.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
}
