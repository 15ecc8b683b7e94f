//! Figures and the printed table: repeated runs, min / median / max,
//! targets, and the machine the run was on.

use super::*;

/// Repeats `run` (which returns one figure) `reps` times.
pub(crate) fn runs(
    reps: usize,
    mut run: impl FnMut() -> anyhow::Result<f64>,
) -> anyhow::Result<Stats> {
    let figures = (0..reps)
        .map(|_| run())
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Stats::of(figures))
}

/// Minimum, median and maximum of a figure over its runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stats {
    pub(crate) min: f64,
    pub(crate) median: f64,
    pub(crate) max: f64,
}

impl Stats {
    pub(crate) fn of(mut figures: Vec<f64>) -> Stats {
        assert!(!figures.is_empty(), "no figures");
        figures.sort_by(f64::total_cmp);
        let n = figures.len();
        let median = if n % 2 == 1 {
            figures[n / 2]
        } else {
            (figures[n / 2 - 1] + figures[n / 2]) / 2.0
        };
        Stats {
            min: figures[0],
            median,
            max: figures[n - 1],
        }
    }

    pub(crate) fn single(figure: f64) -> Stats {
        Stats {
            min: figure,
            median: figure,
            max: figure,
        }
    }
}

/// What a row's figures are.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    /// Nanoseconds.
    Time,
    /// Bytes, shown in MiB.
    MiB,
    /// Bytes, shown in KiB.
    KiB,
    /// A count.
    Count,
    /// A ratio.
    Ratio,
}

impl Kind {
    pub(crate) fn show(self, value: f64) -> String {
        match self {
            Kind::Time => {
                let (value, unit) = if value.abs() < 1e3 {
                    (value, "ns")
                } else if value.abs() < 1e6 {
                    (value / 1e3, "µs")
                } else if value.abs() < 1e9 {
                    (value / 1e6, "ms")
                } else {
                    (value / 1e9, "s")
                };
                format!("{} {unit}", three_digits(value))
            }
            Kind::MiB => format!("{:.1} MiB", value / (1024.0 * 1024.0)),
            Kind::KiB => format!("{:.1} KiB", value / 1024.0),
            Kind::Count => format!("{value:.0}"),
            Kind::Ratio => format!("{value:.1}×"),
        }
    }
}

/// Three significant digits (at least the units).
pub(crate) fn three_digits(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 100.0 {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// A target for a row, judged on the median or on the maximum.
pub(crate) struct Target {
    pub(crate) limit: Option<(f64, bool)>,
    pub(crate) text: String,
}

impl Target {
    pub(crate) fn at_most(limit: f64, text: &str) -> Target {
        Target {
            limit: Some((limit, false)),
            text: text.into(),
        }
    }

    pub(crate) fn at_most_max(limit: f64, text: &str) -> Target {
        Target {
            limit: Some((limit, true)),
            text: text.into(),
        }
    }

    pub(crate) fn none(text: &str) -> Target {
        Target {
            limit: None,
            text: text.into(),
        }
    }
}

/// The table: sections of rows, and notes printed under it.
#[derive(Default)]
pub(crate) struct Table {
    pub(crate) lines: Vec<[String; 6]>,
    pub(crate) notes: Vec<String>,
}

impl Table {
    pub(crate) fn section(&mut self, title: &str) {
        self.lines.push([
            format!("— {title}"),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ]);
    }

    pub(crate) fn row(&mut self, label: &str, kind: Kind, stats: Stats, target: Target) {
        let verdict = match target.limit {
            Some((limit, on_max)) => {
                let judged = if on_max { stats.max } else { stats.median };
                if judged <= limit { "met" } else { "MISSED" }
            }
            None => "",
        };
        self.lines.push([
            label.into(),
            kind.show(stats.min),
            kind.show(stats.median),
            kind.show(stats.max),
            target.text,
            verdict.into(),
        ]);
    }

    pub(crate) fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    pub(crate) fn print(&self) {
        let header = ["figure", "min", "median", "max", "target", ""].map(String::from);
        let width = |column: usize| {
            std::iter::once(&header)
                .chain(&self.lines)
                .map(|line| line[column].chars().count())
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..6).map(width).collect();
        let render = |line: &[String; 6]| {
            let mut out = pad(&line[0], widths[0], false);
            for column in 1..4 {
                out.push_str("  ");
                out.push_str(&pad(&line[column], widths[column], true));
            }
            out.push_str("  ");
            out.push_str(&pad(&line[4], widths[4], false));
            out.push_str("  ");
            out.push_str(&line[5]);
            out.trim_end().to_string()
        };
        println!("{}", render(&header));
        let rule: usize = widths.iter().sum::<usize>() + 2 * 5;
        println!("{}", "-".repeat(rule));
        for line in &self.lines {
            println!("{}", render(line));
        }
    }
}

pub(crate) fn pad(text: &str, width: usize, right: bool) -> String {
    let fill = " ".repeat(width.saturating_sub(text.chars().count()));
    if right {
        format!("{fill}{text}")
    } else {
        format!("{text}{fill}")
    }
}

pub(crate) fn per_call(elapsed: Duration, calls: usize) -> f64 {
    elapsed.as_nanos() as f64 / calls as f64
}
