//! Colours for the human report: each verdict word in its colour, headings bold. JSON is never coloured.
//!
//! `--color auto` (the default) colours only when stdout is a terminal, NO_COLOR is unset or empty
//! (<https://no-color.org>) and TERM is not `dumb`; `--color always` and `--color never` override all three.

use std::fmt;
use std::io::IsTerminal;

use anstyle::{AnsiColor, Style};
use synprobe_core::Verdict;

/// When to colour: the value of `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    /// When stdout is a terminal and NO_COLOR is not set.
    Auto,
    /// Always, even into a pipe or a file.
    Always,
    /// Never.
    Never,
}

/// Paints text for the human report, or leaves it plain.
#[derive(Debug, Clone, Copy)]
pub struct Palette {
    on: bool,
}

impl Palette {
    /// The palette for stdout, from `--color` and the environment.
    pub fn for_stdout(when: ColorWhen) -> Self {
        Palette::new(
            when,
            std::io::stdout().is_terminal(),
            std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
            std::env::var_os("TERM").is_some_and(|t| t == "dumb"),
        )
    }

    /// The decision itself: `--color`, whether the output is a terminal, whether NO_COLOR is set (non-empty),
    /// whether TERM is `dumb`.
    pub fn new(when: ColorWhen, terminal: bool, no_color: bool, dumb: bool) -> Self {
        let on = match when {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => terminal && !no_color && !dumb,
        };
        Palette { on }
    }

    /// The verdict's style: open green, closed yellow, a firewall's answer red, unreachable magenta, filtered
    /// blue.
    fn verdict_style(v: Verdict) -> Style {
        let colour = match v {
            Verdict::Open => AnsiColor::Green,
            Verdict::Closed => AnsiColor::Yellow,
            Verdict::FirewallRst | Verdict::IcmpRejected => AnsiColor::Red,
            Verdict::Unreachable => AnsiColor::Magenta,
            Verdict::Filtered => AnsiColor::Blue,
            // A verdict newer than this palette: bold, in the terminal's own colour.
            _ => return Style::new().bold(),
        };
        Style::new().fg_color(Some(colour.into())).bold()
    }

    /// `text` in the colour of verdict `v` (`text` is usually the verdict's own name).
    pub fn verdict<T: fmt::Display>(&self, v: Verdict, text: T) -> Painted<T> {
        self.paint(Palette::verdict_style(v), text)
    }

    /// `text` in bold: headings.
    pub fn heading<T: fmt::Display>(&self, text: T) -> Painted<T> {
        self.paint(Style::new().bold(), text)
    }

    fn paint<T: fmt::Display>(&self, style: Style, text: T) -> Painted<T> {
        Painted {
            style: if self.on { style } else { Style::new() },
            text,
        }
    }
}

/// Text with its style; displays as plain text when the palette is off. Width and alignment flags are not
/// applied: pad before painting.
pub struct Painted<T> {
    style: Style,
    text: T,
}

impl<T: fmt::Display> fmt::Display for Painted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // An empty style renders as nothing, before and after.
        write!(
            f,
            "{}{}{}",
            self.style.render(),
            self.text,
            self.style.render_reset()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_colours_only_a_terminal_without_no_color() {
        assert!(Palette::new(ColorWhen::Auto, true, false, false).on);
        assert!(!Palette::new(ColorWhen::Auto, false, false, false).on);
        assert!(!Palette::new(ColorWhen::Auto, true, true, false).on);
        assert!(!Palette::new(ColorWhen::Auto, true, false, true).on);
        assert!(Palette::new(ColorWhen::Always, false, true, true).on);
        assert!(!Palette::new(ColorWhen::Never, true, false, false).on);
    }

    #[test]
    fn off_is_plain_and_on_wraps_in_escapes() {
        let off = Palette::new(ColorWhen::Never, true, false, false);
        assert_eq!(off.verdict(Verdict::Open, "open").to_string(), "open");
        assert_eq!(off.heading("Summary").to_string(), "Summary");
        let on = Palette::new(ColorWhen::Always, false, false, false);
        let s = on.verdict(Verdict::FirewallRst, "firewall-rst").to_string();
        assert!(s.starts_with("\x1b[") && s.ends_with("\x1b[0m"), "{s:?}");
        assert!(s.contains("31m"), "red: {s:?}");
        assert!(on
            .verdict(Verdict::Open, "open")
            .to_string()
            .contains("32m"));
        assert!(on
            .verdict(Verdict::Filtered, "filtered")
            .to_string()
            .contains("34m"));
    }
}
