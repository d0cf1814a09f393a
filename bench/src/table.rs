//! The result table: one row per workload with Berth's figure, registry:2's, their ratio, the
//! machine's limit, the target and whether Berth met it; printed as Markdown.

use std::fmt::Write;

/// A measured figure: the number compared and how it is shown.
#[derive(Clone, Debug)]
pub struct Figure {
    pub value: f64,
    pub text: String,
    /// Latency and memory: a smaller value is better.
    pub lower_is_better: bool,
}

impl Figure {
    /// Bytes per second, shown in MB/s (10^6).
    pub fn throughput(bytes_per_sec: f64) -> Figure {
        Figure::text(bytes_per_sec, format!("{:.0} MB/s", bytes_per_sec / 1e6))
    }

    /// Operations per second with a unit (`req/s`, `images/s`).
    pub fn rate(per_sec: f64, unit: &str) -> Figure {
        let text = if per_sec >= 10_000.0 {
            format!("{:.1}k {unit}", per_sec / 1000.0)
        } else {
            format!("{per_sec:.0} {unit}")
        };
        Figure::text(per_sec, text)
    }

    /// A rate with its p50 and p99 latencies.
    pub fn rate_with_latency(per_sec: f64, unit: &str, p50_ms: f64, p99_ms: f64) -> Figure {
        let rate = Figure::rate(per_sec, unit).text;
        Figure::text(
            per_sec,
            format!("{rate}, p50 {} / p99 {}", ms(p50_ms), ms(p99_ms)),
        )
    }

    /// A latency figure compared by its p50.
    pub fn latency(p50_ms: f64, p99_ms: f64) -> Figure {
        Figure::text(p50_ms, format!("p50 {} / p99 {}", ms(p50_ms), ms(p99_ms))).lower_better()
    }

    /// Some text with the number it stands for (a larger number being better).
    pub fn text(value: f64, text: impl Into<String>) -> Figure {
        Figure {
            value,
            text: text.into(),
            lower_is_better: false,
        }
    }

    /// The same figure, a smaller number being the better one.
    pub fn lower_better(self) -> Figure {
        Figure {
            lower_is_better: true,
            ..self
        }
    }
}

/// Milliseconds with sensible precision.
pub fn ms(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.2} ms")
    } else {
        format!("{value:.0} ms")
    }
}

/// Mebibytes.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

/// One workload's line.
#[derive(Clone, Debug, Default)]
pub struct Row {
    pub workload: String,
    pub berth: Option<Figure>,
    pub registry2: Option<Figure>,
    pub limit: Option<String>,
    pub target: String,
    /// Whether Berth met the target; `None` when it was not measured or has no target.
    pub met: Option<bool>,
    /// What else the reader must know (errors, sizes reached, what was skipped).
    pub note: String,
}

impl Row {
    /// How many times better Berth's figure is than registry:2's (`Berth ÷ registry:2`, or
    /// its inverse where smaller is better), shown as `2.34×`.
    fn ratio(&self) -> String {
        match (&self.berth, &self.registry2) {
            (Some(b), Some(r)) if b.lower_is_better && b.value > 0.0 => {
                format!("{:.2}×", r.value / b.value)
            }
            (Some(b), Some(r)) if !b.lower_is_better && r.value > 0.0 => {
                format!("{:.2}×", b.value / r.value)
            }
            _ => "—".into(),
        }
    }
}

/// The Markdown table of `rows`, followed by the rows' notes.
pub fn render(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str(
        "| workload | Berth | registry:2 | Berth's advantage | machine limit | target | met? |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|\n");
    let dash = || "—".to_string();
    for row in rows {
        let met = match row.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "—",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.workload,
            row.berth.as_ref().map_or_else(dash, |f| f.text.clone()),
            row.registry2.as_ref().map_or_else(dash, |f| f.text.clone()),
            row.ratio(),
            row.limit.clone().unwrap_or_else(dash),
            row.target,
            met,
        );
    }
    let notes: Vec<_> = rows.iter().filter(|r| !r.note.is_empty()).collect();
    if !notes.is_empty() {
        out.push('\n');
        for row in notes {
            let _ = writeln!(out, "- {}: {}", row.workload, row.note);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_ratio_met_and_notes() {
        let rows = vec![
            Row {
                workload: "pull".into(),
                berth: Some(Figure::throughput(2.0e9)),
                registry2: Some(Figure::throughput(1.0e9)),
                limit: Some("4000 MB/s".into()),
                target: "≥ 0.7 × loopback".into(),
                met: Some(false),
                note: "2 errors".into(),
            },
            Row {
                workload: "token".into(),
                berth: Some(Figure::rate(2500.0, "req/s")),
                ..Row::default()
            },
        ];
        let text = render(&rows);
        assert!(
            text.contains(
                "| pull | 2000 MB/s | 1000 MB/s | 2.00× | 4000 MB/s | ≥ 0.7 × loopback | **no** |"
            ),
            "{text}"
        );
        assert!(
            text.contains("| token | 2500 req/s | — | — | — |  | — |"),
            "{text}"
        );
        assert!(text.contains("- pull: 2 errors"), "{text}");
        assert!(!text.contains("- token"), "{text}");
    }

    #[test]
    fn the_ratio_is_berths_advantage_whichever_way_is_better() {
        let row = |b: Figure, r: Figure| Row {
            berth: Some(b),
            registry2: Some(r),
            ..Row::default()
        };
        assert_eq!(
            row(Figure::rate(300.0, "x"), Figure::rate(100.0, "x")).ratio(),
            "3.00×"
        );
        assert_eq!(
            row(Figure::latency(0.5, 1.0), Figure::latency(2.0, 9.0)).ratio(),
            "4.00×"
        );
    }

    #[test]
    fn rates_switch_to_thousands_and_latencies_keep_precision() {
        assert_eq!(Figure::rate(15_432.0, "req/s").text, "15.4k req/s");
        assert_eq!(Figure::latency(0.456, 12.3).text, "p50 0.46 ms / p99 12 ms");
        assert_eq!(mib(15 << 20), "15.0 MiB");
    }
}
