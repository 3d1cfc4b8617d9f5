//! `-v` / `-vv`: what synprobe is doing, on stderr, through `tracing`. Off unless asked for: `-v` shows info
//! (capture interfaces, the identity after dropping privileges, replay speed), `-vv` debug (every packet of the
//! plan), `-vvv` trace. Each line starts with `synprobe: `, like synprobe's other messages.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Install the stderr subscriber for `verbose` (the count of `-v`); with 0, install nothing.
pub fn init(verbose: u8) {
    let level = match verbose {
        0 => return,
        1 => Level::INFO,
        2 => Level::DEBUG,
        _ => Level::TRACE,
    };
    // A subscriber can only be set once per process; `init` is called once, so an error cannot happen.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .event_format(Line)
        .try_init();
}

/// `synprobe: message` for info and above, `synprobe: debug: message` below.
struct Line;

impl<S, N> FormatEvent<S, N> for Line
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "synprobe: ")?;
        let level = *event.metadata().level();
        if level == Level::DEBUG {
            write!(writer, "debug: ")?;
        } else if level == Level::TRACE {
            write!(writer, "trace: ")?;
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}
