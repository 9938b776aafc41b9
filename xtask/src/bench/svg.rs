//! The latency chart of `cargo xtask bench` (`target/bench/latency.svg`): one
//! row per latency figure, the baseline's and Tessera's distributions as
//! horizontal box plots on one shared log10 axis, for a person to open in a
//! browser. Std-only: the chart is small enough to write by hand.

use std::fmt::Write;

use super::lines::Distribution;

/// One side of a row.
pub struct Series<'a> {
    pub label: &'a str,
    pub distribution: &'a Distribution,
}

/// One figure: its baseline and Tessera.
pub struct Row<'a> {
    pub title: &'a str,
    pub baseline: Series<'a>,
    pub tessera: Series<'a>,
}

const TITLE: &str = "Tessera vs baseline: latency in instructions (QEMU -icount, deterministic)";
const AXIS_TITLE: &str = "instructions per operation (log scale)";
const KEY: &str = "whiskers min–max, box p25–p75, bar median, ◆ p99";

const WIDTH: f64 = 960.0;
/// Room for the row titles and the series labels.
const LEFT_MARGIN: f64 = 250.0;
/// Room for the median text after the longest whisker.
const RIGHT_MARGIN: f64 = 90.0;
const TITLE_X: f64 = 12.0;
const TITLE_Y: f64 = 26.0;
const SUBTITLE_Y: f64 = 46.0;
const LEGEND_Y: f64 = 70.0;
const LEGEND_SWATCH: f64 = 10.0;
/// Where the Tessera entry of the legend starts, after the baseline's.
const LEGEND_SECOND_ITEM_DX: f64 = 260.0;
const PLOT_TOP: f64 = 86.0;
const ROW_HEIGHT: f64 = 56.0;
/// Centres of the baseline's and Tessera's box plots, from their row's top.
const BASELINE_DY: f64 = 18.0;
const TESSERA_DY: f64 = 38.0;
const BOX_HALF_HEIGHT: f64 = 6.0;
/// A box with p25 == p75 (common under -icount) must still show.
const MIN_BOX_WIDTH: f64 = 1.0;
const WHISKER_CAP: f64 = 3.0;
const MEDIAN_OVERHANG: f64 = 3.0;
const P99_SIZE: f64 = 4.0;
const TEXT_GAP: f64 = 6.0;
/// SVG places text by its baseline; this centres 11–13 px text on a line.
const TEXT_CENTRE_DY: f64 = 4.0;
const TICK_LABEL_DY: f64 = 16.0;
const AXIS_TITLE_DY: f64 = 34.0;
const BOTTOM_MARGIN: f64 = 46.0;
const EMPTY_HEIGHT: f64 = 110.0;

const BASELINE_COLOUR: &str = "#7f7f7f";
const TESSERA_COLOUR: &str = "#1f77b4";
const GRID_COLOUR: &str = "#dddddd";
const STRIPE_COLOUR: &str = "#f6f6f6";
const DECADE: u64 = 10;

const TITLE_STYLE: &str = r#"font-size="16" font-weight="bold""#;
const MUTED_STYLE: &str = r##"fill="#555555""##;
const KEY_STYLE: &str = r##"text-anchor="end" font-size="11" fill="#555555""##;
const ROW_TITLE_STYLE: &str = r#"font-size="13" font-weight="bold""#;
const TICK_STYLE: &str = r#"text-anchor="middle" font-size="11""#;
const AXIS_TITLE_STYLE: &str = r#"text-anchor="middle""#;
/// Text inside a box plot's group must not inherit the group's stroke.
const LABEL_STYLE: &str = r#"text-anchor="end" font-size="11" stroke="none""#;
const MEDIAN_TEXT_STYLE: &str = r#"font-size="11" stroke="none""#;
const BOX_STYLE: &str = r#"fill-opacity="0.25""#;
const MEDIAN_STYLE: &str = r#"stroke-width="3""#;
/// A white rim keeps the p99 diamond visible over its box.
const P99_STYLE: &str = r#"stroke="white" stroke-width="0.5""#;

/// The chart, as an SVG document.
pub fn chart(rows: &[Row<'_>], subtitle: &str) -> String {
    let plot_bottom = PLOT_TOP + rows.len() as f64 * ROW_HEIGHT;
    let height = if rows.is_empty() {
        EMPTY_HEIGHT
    } else {
        plot_bottom + BOTTOM_MARGIN
    };
    let mut svg = String::new();
    write_header(&mut svg, height, subtitle);
    if rows.is_empty() {
        text(
            &mut svg,
            (TITLE_X, LEGEND_Y),
            ROW_TITLE_STYLE,
            "no latency figures",
        );
    } else {
        let axis = Axis::covering(rows);
        write_legend(&mut svg, rows);
        write_stripes(&mut svg, rows.len());
        write_grid(&mut svg, &axis, plot_bottom);
        for (index, row) in rows.iter().enumerate() {
            write_row(&mut svg, &axis, row, index);
        }
    }
    svg.push_str("</svg>\n");
    svg
}

/// The shared x axis: log10 from the decade at or below the smallest value
/// to the decade at or above the largest, so every tick is a round number.
struct Axis {
    low: u64,
    high: u64,
}

impl Axis {
    fn covering(rows: &[Row<'_>]) -> Axis {
        let values = rows
            .iter()
            .flat_map(|row| [row.baseline.distribution, row.tessera.distribution])
            .flat_map(|d| [d.min, d.p25, d.median, d.p75, d.p99, d.max]);
        let low = decade_at_or_below(values.clone().min().unwrap_or(1));
        let high = decade_at_or_above(values.max().unwrap_or(1));
        // A single decade would divide by zero in `x`.
        let high = high.max(low.saturating_mul(DECADE));
        Axis { low, high }
    }

    fn x(&self, value: u64) -> f64 {
        let fraction = (log10(value) - log10(self.low)) / (log10(self.high) - log10(self.low));
        LEFT_MARGIN + fraction * (WIDTH - LEFT_MARGIN - RIGHT_MARGIN)
    }

    fn decades(&self) -> impl Iterator<Item = u64> {
        powers_of_ten()
            .skip_while(|&d| d < self.low)
            .take_while(|&d| d <= self.high)
    }
}

/// Zero cannot sit on a log axis; an operation costs at least one instruction.
fn log10(value: u64) -> f64 {
    (value.max(1) as f64).log10()
}

fn powers_of_ten() -> impl Iterator<Item = u64> {
    std::iter::successors(Some(1u64), |d| d.checked_mul(DECADE))
}

fn decade_at_or_below(value: u64) -> u64 {
    powers_of_ten()
        .take_while(|&d| d <= value)
        .last()
        .unwrap_or(1)
}

fn decade_at_or_above(value: u64) -> u64 {
    powers_of_ten().find(|&d| d >= value).unwrap_or(u64::MAX)
}

fn decade_label(decade: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")];
    match UNITS.iter().find(|(unit, _)| decade >= *unit) {
        Some((unit, suffix)) => format!("{}{suffix}", decade / unit),
        None => decade.to_string(),
    }
}

fn escape(raw: &str) -> String {
    // `&` first, or it would re-escape the other entities.
    raw.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

type Point = (f64, f64);

fn text(svg: &mut String, (x, y): Point, style: &str, content: &str) {
    let content = escape(content);
    let _ = writeln!(
        svg,
        r#"<text x="{x:.1}" y="{y:.1}" {style}>{content}</text>"#
    );
}

fn line(svg: &mut String, (x1, y1): Point, (x2, y2): Point, style: &str) {
    let _ = writeln!(
        svg,
        r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" {style}/>"#
    );
}

fn rect(svg: &mut String, (x, y): Point, (width, height): Point, style: &str) {
    let size = format!(r#"width="{width:.1}" height="{height:.1}""#);
    let _ = writeln!(svg, r#"<rect x="{x:.1}" y="{y:.1}" {size} {style}/>"#);
}

fn write_header(svg: &mut String, height: f64, subtitle: &str) {
    let size =
        format!(r#"width="{WIDTH:.0}" height="{height:.0}" viewBox="0 0 {WIDTH:.0} {height:.0}""#);
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" version="1.1" {size} font-family="sans-serif" font-size="12">"#
    );
    svg.push_str("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    text(svg, (TITLE_X, TITLE_Y), TITLE_STYLE, TITLE);
    text(svg, (TITLE_X, SUBTITLE_Y), MUTED_STYLE, subtitle);
}

/// Baselines differ by figure (floor for traps, native otherwise): the
/// legend names each label once, in order of appearance.
fn distinct_labels<'a>(labels: impl Iterator<Item = &'a str>) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for label in labels {
        if !seen.contains(&label) {
            seen.push(label);
        }
    }
    seen.join(" / ")
}

fn write_legend(svg: &mut String, rows: &[Row<'_>]) {
    let baselines = distinct_labels(rows.iter().map(|row| row.baseline.label));
    let tesseras = distinct_labels(rows.iter().map(|row| row.tessera.label));
    let entries = [(BASELINE_COLOUR, baselines), (TESSERA_COLOUR, tesseras)];
    for (index, (colour, label)) in entries.iter().enumerate() {
        let x = LEFT_MARGIN + index as f64 * LEGEND_SECOND_ITEM_DX;
        let swatch = (LEGEND_SWATCH, LEGEND_SWATCH);
        rect(
            svg,
            (x, LEGEND_Y - LEGEND_SWATCH),
            swatch,
            &format!(r#"fill="{colour}""#),
        );
        text(svg, (x + LEGEND_SWATCH + TEXT_GAP, LEGEND_Y), "", label);
    }
    text(svg, (WIDTH - TITLE_X, LEGEND_Y), KEY_STYLE, KEY);
}

/// Alternate stripes keep a row's two box plots visibly together; they go
/// first so that the gridlines stay visible over them.
fn write_stripes(svg: &mut String, row_count: usize) {
    let style = format!(r#"fill="{STRIPE_COLOUR}""#);
    for index in (1..row_count).step_by(2) {
        let top = PLOT_TOP + index as f64 * ROW_HEIGHT;
        rect(svg, (0.0, top), (WIDTH, ROW_HEIGHT), &style);
    }
}

fn write_grid(svg: &mut String, axis: &Axis, bottom: f64) {
    let grid_style = format!(r#"stroke="{GRID_COLOUR}""#);
    for decade in axis.decades() {
        let x = axis.x(decade);
        line(svg, (x, PLOT_TOP), (x, bottom), &grid_style);
        text(
            svg,
            (x, bottom + TICK_LABEL_DY),
            TICK_STYLE,
            &decade_label(decade),
        );
    }
    let centre = (LEFT_MARGIN + WIDTH - RIGHT_MARGIN) / 2.0;
    text(
        svg,
        (centre, bottom + AXIS_TITLE_DY),
        AXIS_TITLE_STYLE,
        AXIS_TITLE,
    );
}

fn write_row(svg: &mut String, axis: &Axis, row: &Row<'_>, index: usize) {
    let top = PLOT_TOP + index as f64 * ROW_HEIGHT;
    let title_y = top + ROW_HEIGHT / 2.0 + TEXT_CENTRE_DY;
    text(svg, (TITLE_X, title_y), ROW_TITLE_STYLE, row.title);
    write_box_plot(svg, axis, &row.baseline, BASELINE_COLOUR, top + BASELINE_DY);
    write_box_plot(svg, axis, &row.tessera, TESSERA_COLOUR, top + TESSERA_DY);
}

fn write_box_plot(svg: &mut String, axis: &Axis, series: &Series<'_>, colour: &str, y: f64) {
    let d = series.distribution;
    let [min, p25, median, p75, p99, max] =
        [d.min, d.p25, d.median, d.p75, d.p99, d.max].map(|v| axis.x(v));
    // The tooltip gives the exact figures the drawing rounds away.
    let tooltip = escape(&format!(
        "{}: n={} min={} p25={} median={} p75={} p99={} max={}",
        series.label, d.samples, d.min, d.p25, d.median, d.p75, d.p99, d.max
    ));
    let _ = writeln!(
        svg,
        r#"<g stroke="{colour}" fill="{colour}"><title>{tooltip}</title>"#
    );
    text(
        svg,
        (LEFT_MARGIN - TEXT_GAP, y + TEXT_CENTRE_DY),
        LABEL_STYLE,
        series.label,
    );
    line(svg, (min, y), (max, y), "");
    for x in [min, max] {
        line(svg, (x, y - WHISKER_CAP), (x, y + WHISKER_CAP), "");
    }
    let box_size = ((p75 - p25).max(MIN_BOX_WIDTH), 2.0 * BOX_HALF_HEIGHT);
    rect(svg, (p25, y - BOX_HALF_HEIGHT), box_size, BOX_STYLE);
    let reach = BOX_HALF_HEIGHT + MEDIAN_OVERHANG;
    line(svg, (median, y - reach), (median, y + reach), MEDIAN_STYLE);
    let (top, right, bottom, left) = (y - P99_SIZE, p99 + P99_SIZE, y + P99_SIZE, p99 - P99_SIZE);
    let _ = writeln!(
        svg,
        r#"<polygon points="{p99:.1},{top:.1} {right:.1},{y:.1} {p99:.1},{bottom:.1} {left:.1},{y:.1}" {P99_STYLE}/>"#
    );
    let median_text = format!("med {}", d.median);
    text(
        svg,
        (max + TEXT_GAP, y + TEXT_CENTRE_DY),
        MEDIAN_TEXT_STYLE,
        &median_text,
    );
    svg.push_str("</g>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spread(low: u64, high: u64) -> Distribution {
        let median = (low + high) / 2;
        let (min, p25, p75, p99, max) = (low, low, high, high, high);
        Distribution {
            samples: 100,
            min,
            p25,
            median,
            p75,
            p99,
            max,
            el2_total: 0,
        }
    }

    fn row<'a>(
        title: &'a str,
        label: &'a str,
        baseline: &'a Distribution,
        tessera: &'a Distribution,
    ) -> Row<'a> {
        let baseline = Series {
            label,
            distribution: baseline,
        };
        let tessera = Series {
            label: "Tessera",
            distribution: tessera,
        };
        Row {
            title,
            baseline,
            tessera,
        }
    }

    #[test]
    fn is_a_complete_svg_with_every_title_and_label() {
        let (low, high) = (spread(0, 40), spread(300, 90_000));
        let rows = [
            row("null hypercall (HVC)", "floor", &low, &high),
            row("boot", "native", &low, &high),
        ];
        let svg = chart(&rows, "subtitle");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains(r#"xmlns="http://www.w3.org/2000/svg""#));
        for wanted in [
            "null hypercall (HVC)",
            "boot",
            "floor",
            "native",
            "Tessera",
            "med 20",
            "100k",
        ] {
            assert!(svg.contains(wanted), "missing {wanted}");
        }
    }

    #[test]
    fn escapes_text() {
        let (low, high) = (spread(1, 2), spread(3, 4));
        let svg = chart(&[row("a <&> \"b\"", "floor", &low, &high)], "x & y");
        assert!(svg.contains("a &lt;&amp;&gt; &quot;b&quot;"));
        assert!(svg.contains("x &amp; y"));
        assert!(!svg.contains("<&>"));
    }

    #[test]
    fn x_is_monotonic_and_decades_increase() {
        let axis = Axis {
            low: 1,
            high: 100_000,
        };
        let decades: Vec<u64> = axis.decades().collect();
        assert_eq!(decades, [1, 10, 100, 1_000, 10_000, 100_000]);
        let xs: Vec<f64> = decades.iter().map(|&d| axis.x(d)).collect();
        assert!(xs.windows(2).all(|pair| pair[0] < pair[1]));
        assert!((xs[0] - LEFT_MARGIN).abs() < 1e-9);
        assert!((1..2_000).all(|v| axis.x(v) < axis.x(v + 1)));
        assert_eq!(axis.x(0), axis.x(1));
    }

    #[test]
    fn axis_covers_the_data_in_whole_decades() {
        let (low, high) = (spread(7, 12), spread(300, 45_000));
        let axis = Axis::covering(&[row("t", "floor", &low, &high)]);
        assert_eq!((axis.low, axis.high), (1, 100_000));
        assert_eq!(decade_label(10_000), "10k");
    }

    #[test]
    fn no_rows_is_still_an_svg() {
        let svg = chart(&[], "nothing ran");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("no latency figures"));
    }
}
