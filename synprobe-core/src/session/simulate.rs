//! A sans-IO [`Session`] run against a scripted network, with simulated time: how the plan's tests (and an
//! embedder's) drive a session without sockets.

use super::{Outgoing, Plan, TargetReport};
use crate::capture::LinkType;
use crate::model::Observed;
use crate::time::{Duration, Timestamp};
use crate::wire::parse_frame;

/// Run a sans-IO plan (a [`super::Session`] or a sweep) against a scripted network, for tests: `respond` sees
/// each packet sent and the time it is sent, and returns the frames (as IP datagrams with their delay) that come
/// back. Time is simulated. The reports come one per port, in the plan's order.
pub fn simulate<P: Plan>(
    mut session: P,
    mut respond: impl FnMut(Timestamp, &Outgoing) -> Vec<(Duration, Vec<u8>)>,
) -> Vec<TargetReport> {
    let mut t = Timestamp(1_700_000_000_000_000_000);
    let mut inbox: Vec<(Timestamp, Vec<u8>)> = Vec::new();
    let mut frame = 0u64;
    for _ in 0..1_000_000 {
        let (out, next) = session.poll(t);
        for p in &out {
            inbox.push((t, p.datagram.clone()));
            for (delay, bytes) in respond(t, p) {
                inbox.push((t.plus(delay), bytes));
            }
        }
        inbox.sort_by_key(|(ts, _)| *ts);
        let Some(deadline) = next else { break };
        let horizon = inbox
            .first()
            .map_or(deadline, |(ts, _)| (*ts).min(deadline));
        t = t.max(horizon);
        let due: Vec<(Timestamp, Vec<u8>)> = {
            let split = inbox.partition_point(|(ts, _)| *ts <= t);
            inbox.drain(..split).collect()
        };
        let delivered = !due.is_empty();
        for (ts, bytes) in due {
            if let Ok(packet) = parse_frame(LinkType::RAW, &bytes) {
                frame += 1;
                session.on_frame(&Observed {
                    frame,
                    ts,
                    len: bytes.len() as u32,
                    packet,
                });
            }
        }
        // Nothing sent, nothing delivered, nothing on the way: the session only waits for its deadline.
        if out.is_empty() && !delivered && t < deadline && inbox.is_empty() {
            t = deadline;
        }
    }
    session.reports()
}
