//! A grouped bar chart of byte counts, written as SVG text: a title, a
//! legend, a y axis in one unit with round ticks, and for each group one bar
//! per series with its value on top and the exact size as a tooltip.
//!
//! The output is a pure function of the chart: no fonts are measured (text
//! widths are estimated at about 6.5 px a character) and coordinates are
//! rounded to hundredths, so the same chart gives the same bytes.

use std::fmt::Write as _;

use super::diff::human;

/// One kind of bar: its legend name and fill colour.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: &'static str,
    /// An SVG colour, such as `#3a78c2`.
    pub color: &'static str,
}

/// One group of bars under an x label: a value for each series, in the
/// order of [`BarChart::series`]; `None` leaves that bar's place empty.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub label: String,
    pub bytes: Vec<Option<u64>>,
}

/// A grouped bar chart of byte counts.
#[derive(Debug, Clone, PartialEq)]
pub struct BarChart {
    /// The heading; the unit of the y axis is appended, as in `(MB)`.
    pub title: String,
    pub series: Vec<Series>,
    pub groups: Vec<Group>,
}

/// The unit a chart's axis and bar values are given in.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Unit {
    name: &'static str,
    bytes: f64,
}

impl Unit {
    /// The largest unit that `max` bytes is at least one of (bytes for 0).
    fn for_max(max: f64) -> Unit {
        let (name, bytes) = [("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)]
            .into_iter()
            .find(|(_, b)| max >= *b)
            .unwrap_or(("B", 1.0));
        Unit { name, bytes }
    }

    /// `bytes` in this unit, as a bar's label: whole bytes, else one decimal.
    fn format(self, bytes: u64) -> String {
        if self.bytes == 1.0 {
            bytes.to_string()
        } else {
            format!("{:.1}", bytes as f64 / self.bytes)
        }
    }
}

/// A round step for about `ticks` ticks up to `max`: 1, 2 or 5 times a
/// power of ten, and never below 1.
fn tick_step(max: f64, ticks: u32) -> f64 {
    let raw = (max / f64::from(ticks)).max(1.0);
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * power)
}

/// The y axis: ticks at 0, `step`, ... `ticks * step` (in `unit`), the last
/// at or above the largest value.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Axis {
    unit: Unit,
    step: f64,
    ticks: u32,
}

impl Axis {
    /// About four round ticks up to `max` bytes (at least one, up to 1 B).
    fn for_max(max: u64) -> Axis {
        let max = max.max(1) as f64;
        let unit = Unit::for_max(max);
        let step = tick_step(max / unit.bytes, 4);
        let ticks = (max / unit.bytes / step).ceil().max(1.0) as u32;
        Axis { unit, step, ticks }
    }

    /// The bytes at the top tick.
    fn top_bytes(&self) -> f64 {
        self.step * f64::from(self.ticks) * self.unit.bytes
    }
}

/// A rectangle in SVG user units (y grows downwards).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rect {
    x: f64,
    y: f64,
    width: f64,
    height: f64,
}

/// Where things go: fixed margins and bar width, groups wide enough for
/// their bars and for their labels.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Layout {
    /// The space of one bar (the bar is 2 px narrower).
    bar: f64,
    /// The x of the y axis.
    left: f64,
    /// The y of the plot's top.
    top: f64,
    /// The height of the plot, from the top tick to the x axis.
    height: f64,
    /// The width of one group.
    group: f64,
    /// The width of the whole chart.
    width: f64,
    /// Bar places in each group.
    bars: usize,
}

impl Layout {
    fn new(chart: &BarChart) -> Layout {
        let (bar, left, top, height) = (26.0, 80.0, 60.0, 260.0);
        let bars = chart.series.len();
        let label_chars = chart
            .groups
            .iter()
            .map(|g| g.label.chars().count())
            .max()
            .unwrap_or(0);
        let group = (bar * bars as f64 + 30.0).max(label_chars as f64 * 6.5 + 12.0);
        let width = (left + group * chart.groups.len() as f64 + 20.0).max(460.0);
        Layout {
            bar,
            left,
            top,
            height,
            group,
            width,
            bars,
        }
    }

    /// The y of the x axis.
    fn base(&self) -> f64 {
        self.top + self.height
    }

    /// The x where the bars of group `group` start.
    fn group_x(&self, group: usize) -> f64 {
        let bars = self.bar * self.bars as f64;
        self.left + (self.group - bars) / 2.0 + group as f64 * self.group
    }

    /// The x of the middle of group `group`, where its label goes.
    fn group_middle(&self, group: usize) -> f64 {
        self.group_x(group) + self.bar * self.bars as f64 / 2.0
    }

    /// The bar of series `slot` in group `group` for `bytes` on `axis`.
    fn bar_rect(&self, axis: &Axis, group: usize, slot: usize, bytes: u64) -> Rect {
        let height = self.height * bytes as f64 / axis.top_bytes();
        Rect {
            x: self.group_x(group) + slot as f64 * self.bar,
            y: self.base() - height,
            width: self.bar - 2.0,
            height,
        }
    }
}

impl BarChart {
    /// The chart as a standalone SVG document.
    pub fn to_svg(&self) -> String {
        let max = self
            .groups
            .iter()
            .flat_map(|g| g.bytes.iter().flatten())
            .copied()
            .max()
            .unwrap_or(0);
        let axis = Axis::for_max(max);
        let layout = Layout::new(self);
        let mut s = String::new();
        self.write_heading(&mut s, &axis, &layout);
        write_axis(&mut s, &axis, &layout);
        for (i, group) in self.groups.iter().enumerate() {
            self.write_group(&mut s, &axis, &layout, i, group);
        }
        s.push_str("</svg>\n");
        s
    }

    /// The opening tag, the title with the unit, and the legend.
    fn write_heading(&self, s: &mut String, axis: &Axis, layout: &Layout) {
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" font-size="11">"#,
            num(layout.width),
            num(layout.base() + 50.0)
        );
        let _ = writeln!(
            s,
            r#"<text x="10" y="20" font-size="14" font-weight="bold">{} ({})</text>"#,
            escape(&self.title),
            axis.unit.name
        );
        for (i, series) in self.series.iter().enumerate() {
            let x = 10.0 + i as f64 * 80.0;
            let _ = writeln!(
                s,
                r#"<rect x="{}" y="32" width="10" height="10" fill="{}"/><text x="{}" y="41">{}</text>"#,
                num(x),
                escape(series.color),
                num(x + 14.0),
                escape(series.name)
            );
        }
    }

    /// The bars of one group, each with its value above it, and the label.
    fn write_group(&self, s: &mut String, axis: &Axis, layout: &Layout, i: usize, group: &Group) {
        for (slot, (series, bytes)) in self.series.iter().zip(&group.bytes).enumerate() {
            let Some(bytes) = *bytes else { continue };
            let r = layout.bar_rect(axis, i, slot, bytes);
            let _ = writeln!(
                s,
                r#"<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}: {}</title></rect>"#,
                num(r.x),
                num(r.y),
                num(r.width),
                num(r.height),
                escape(series.color),
                escape(series.name),
                human(bytes)
            );
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" text-anchor="middle" font-size="8">{}</text>"#,
                num(r.x + r.width / 2.0),
                num(r.y - 3.0),
                axis.unit.format(bytes)
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            num(layout.group_middle(i)),
            num(layout.base() + 18.0),
            escape(&group.label)
        );
    }
}

/// The tick labels and grid lines, then the x axis over them.
fn write_axis(s: &mut String, axis: &Axis, layout: &Layout) {
    let (left, right, base) = (num(layout.left), num(layout.width - 10.0), layout.base());
    for tick in 0..=axis.ticks {
        let value = axis.step * f64::from(tick);
        let y = base - layout.height * f64::from(tick) / f64::from(axis.ticks);
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" text-anchor="end" fill="#555">{value:.0}</text><line x1="{left}" y1="{y}" x2="{right}" y2="{y}" stroke="#ddd"/>"##,
            num(layout.left - 6.0),
            num(y + 4.0),
            y = num(y)
        );
    }
    let base = num(base);
    let _ = writeln!(
        s,
        r##"<line x1="{left}" y1="{base}" x2="{right}" y2="{base}" stroke="#333"/>"##
    );
}

/// A coordinate rounded to hundredths, without trailing zeros.
fn num(v: f64) -> String {
    // Adding 0.0 turns -0.0 into 0.0.
    format!("{}", (v * 100.0).round() / 100.0 + 0.0)
}

/// `s` as XML text or a quoted attribute value.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GREY: Series = Series {
        name: "image",
        color: "#b0b0b0",
    };
    const BLUE: Series = Series {
        name: "chunk",
        color: "#3a78c2",
    };

    fn chart(groups: &[(&str, &[Option<u64>])]) -> BarChart {
        BarChart {
            title: "Download".to_string(),
            series: vec![GREY, BLUE],
            groups: groups
                .iter()
                .map(|(label, bytes)| Group {
                    label: label.to_string(),
                    bytes: bytes.to_vec(),
                })
                .collect(),
        }
    }

    /// Checks that `svg` is one well-formed `<svg>` element: every tag
    /// closed in order, attributes quoted, `<` and `&` only as markup or
    /// entities.
    fn assert_well_formed(svg: &str) {
        let mut open: Vec<&str> = Vec::new();
        let mut roots = 0;
        let mut rest = svg;
        while let Some(start) = rest.find('<') {
            assert_text(&rest[..start], svg);
            let end = rest[start..].find('>').expect("a tag ends") + start;
            let tag = &rest[start + 1..end];
            rest = &rest[end + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(open.pop(), Some(name), "closing {name} in {svg}");
                continue;
            }
            if open.is_empty() {
                roots += 1;
            }
            let (body, closed) = match tag.strip_suffix('/') {
                Some(body) => (body, true),
                None => (tag, false),
            };
            let name = body.split(' ').next().unwrap();
            assert!(!name.is_empty() && name.chars().all(|c| c.is_ascii_alphabetic()));
            assert_attributes(&body[name.len()..], svg);
            if !closed {
                open.push(name);
            }
        }
        assert_text(rest.trim(), svg);
        assert!(open.is_empty(), "unclosed {open:?} in {svg}");
        assert_eq!(roots, 1, "{svg}");
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>\n"));
    }

    /// ` a="1" b="2"`: names, `=`, double-quoted values of escaped text.
    fn assert_attributes(mut attrs: &str, svg: &str) {
        while !attrs.is_empty() {
            attrs = attrs
                .strip_prefix(' ')
                .expect("a space before an attribute");
            let (name, after) = attrs.split_once("=\"").expect("name=\"value\"");
            assert!(
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            );
            let (value, after) = after.split_once('"').expect("a closing quote");
            assert_text(value, svg);
            attrs = after;
        }
    }

    fn assert_text(text: &str, svg: &str) {
        assert!(!text.contains(['<', '>', '"']), "{text:?} in {svg}");
        for (i, _) in text.match_indices('&') {
            let entity = &text[i..];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                    .iter()
                    .any(|e| entity.starts_with(e)),
                "{entity:?} in {svg}"
            );
        }
    }

    #[test]
    fn ticks_are_round_and_reach_the_top() {
        assert_eq!(tick_step(4.0, 4), 1.0);
        assert_eq!(tick_step(48.0, 4), 20.0);
        assert_eq!(tick_step(0.3, 4), 1.0);
        assert_eq!(tick_step(999.0, 4), 500.0);
        let axis = |max| {
            let a = Axis::for_max(max);
            (a.unit.name, a.step, a.ticks)
        };
        // Nothing at all, and tiny values: whole bytes, one tick at least.
        assert_eq!(axis(0), ("B", 1.0, 1));
        assert_eq!(axis(1), ("B", 1.0, 1));
        assert_eq!(axis(3), ("B", 1.0, 3));
        assert_eq!(axis(999), ("B", 500.0, 2));
        assert_eq!(axis(1_800), ("kB", 1.0, 2));
        assert_eq!(axis(70_500_000), ("MB", 20.0, 4));
        // Exactly on a tick: no empty tick above.
        assert_eq!(axis(80_000_000), ("MB", 20.0, 4));
        assert_eq!(axis(5_000_000_000_000), ("TB", 2.0, 3));
        assert_eq!(axis(u64::MAX), ("TB", 5_000_000.0, 4));
    }

    #[test]
    fn bar_values_are_given_in_the_axis_unit() {
        assert_eq!(Unit::for_max(512.0).format(512), "512");
        assert_eq!(Unit::for_max(70.5e6).format(70_499_000), "70.5");
        assert_eq!(Unit::for_max(70.5e6).format(300_000), "0.3");
    }

    #[test]
    fn bars_stand_on_the_axis_scaled_to_the_top_tick() {
        // 80 B tops the axis at 80 (ticks of 20); two bars of 26 px centred
        // in a group of 82 px right of the axis at x = 80.
        let c = chart(&[("a", &[Some(80), Some(20)]), ("b", &[Some(40), None])]);
        let axis = Axis::for_max(80);
        let layout = Layout::new(&c);
        assert_eq!((layout.group, layout.width), (82.0, 460.0));
        let rect = |group, slot, bytes| layout.bar_rect(&axis, group, slot, bytes);
        let r = |x, y, height| Rect {
            x,
            y,
            width: 24.0,
            height,
        };
        assert_eq!(rect(0, 0, 80), r(95.0, 60.0, 260.0));
        assert_eq!(rect(0, 1, 20), r(121.0, 255.0, 65.0));
        assert_eq!(rect(1, 0, 40), r(177.0, 190.0, 130.0));
        let svg = c.to_svg();
        assert_well_formed(&svg);
        for line in [
            r##"<rect x="95" y="60" width="24" height="260" fill="#b0b0b0"><title>image: 80 B</title></rect>"##,
            r#"<text x="107" y="57" text-anchor="middle" font-size="8">80</text>"#,
            r##"<rect x="121" y="255" width="24" height="65" fill="#3a78c2"><title>chunk: 20 B</title></rect>"##,
            r#"<text x="203" y="338" text-anchor="middle">b</text>"#,
            r##"<text x="74" y="259" text-anchor="end" fill="#555">20</text><line x1="80" y1="255" x2="450" y2="255" stroke="#ddd"/>"##,
            r##"<line x1="80" y1="320" x2="450" y2="320" stroke="#333"/>"##,
        ] {
            assert!(svg.lines().any(|l| l == line), "no {line} in {svg}");
        }
        // The missing value has no bar: three in all.
        assert_eq!(svg.matches("<title>").count(), 3);
    }

    #[test]
    fn groups_widen_for_long_labels() {
        let label = "x".repeat(40);
        let c = chart(&[(&label, &[Some(1), Some(1)]), ("b", &[Some(1), Some(1)])]);
        let layout = Layout::new(&c);
        assert_eq!(layout.group, 40.0 * 6.5 + 12.0);
        assert_eq!(layout.width, 80.0 + 2.0 * 272.0 + 20.0);
        assert_eq!(layout.group_middle(1), 80.0 + 272.0 * 1.5);
    }

    #[test]
    fn labels_and_names_are_escaped() {
        assert_eq!(
            escape(r#"a<b>&"c"'d'"#),
            "a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos;"
        );
        let mut c = chart(&[(r#"oci:/t/<a>&b:"v1" → 'v2'"#, &[Some(5), Some(1)])]);
        c.title = "Bytes & <requests>".to_string();
        c.series[0].name = "im<age";
        let svg = c.to_svg();
        assert_well_formed(&svg);
        assert!(svg.contains(">oci:/t/&lt;a&gt;&amp;b:&quot;v1&quot; → &apos;v2&apos;</text>"));
        assert!(svg.contains(">Bytes &amp; &lt;requests&gt; (B)</text>"));
        assert!(svg.contains("<title>im&lt;age: 5 B</title>"));
    }

    #[test]
    fn the_same_chart_gives_the_same_bytes() {
        let c = chart(&[
            ("v1 → v2", &[Some(48_012_345), Some(6_543_210)]),
            ("v2 → v3", &[Some(68_700_001), Some(21_000_333)]),
        ]);
        let svg = c.to_svg();
        assert_eq!(svg, c.clone().to_svg());
        assert_well_formed(&svg);
        // Coordinates are rounded: 260 * 48012345 / 80e6 = 156.040...
        assert!(
            svg.contains(r#"y="163.96" width="24" height="156.04""#),
            "{svg}"
        );
    }

    #[test]
    fn an_empty_chart_has_an_axis_and_a_legend_but_no_bars() {
        let svg = chart(&[]).to_svg();
        assert_well_formed(&svg);
        assert!(svg.contains(">Download (B)</text>"));
        assert!(svg.contains(">image</text>") && svg.contains(">chunk</text>"));
        assert!(!svg.contains("<title>"));
        assert_eq!(
            svg.matches(r#"text-anchor="end""#).count(),
            2,
            "ticks 0 and 1"
        );
        assert!(svg.contains(r#"width="460""#));
    }

    #[test]
    fn a_single_group_fills_the_plot() {
        let svg = chart(&[("v1 → v2", &[Some(2_000_000), Some(500_000)])]).to_svg();
        assert_well_formed(&svg);
        assert_eq!(svg.matches("<title>").count(), 2);
        assert!(svg.contains("<title>image: 2.0 MB</title>"));
        assert!(svg.contains(">0.5</text>") && svg.contains(">v1 → v2</text>"));
        // 2 MB on ticks of 1 MB: the bar reaches the top tick.
        assert!(svg.contains(r#"y="60" width="24" height="260""#), "{svg}");
    }
}
