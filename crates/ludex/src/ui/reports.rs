//! Reports: games per platform, per genre, per release year and the rating distribution, each
//! as a server-rendered SVG bar chart, a table of the numbers and a CSV download.
//!
//! The numbers are the store's aggregates (`Catalog::counts`), kept as games are written: a
//! view costs the number of distinct platforms, genres and years, whatever the catalog's size.

use super::html::{Html, csv_field};
use super::{Section, Viewer, error_page, failure_page, html_response, page as layout};
use crate::api::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ludex_domain::CatalogCounts;
use ludex_domain::counts::LabelCount;
use std::collections::BTreeMap;

/// Rows drawn in a chart; the table and the CSV have them all.
const CHART_ROWS: usize = 25;

/// A report's rows from the store's label counts.
fn label_rows(counts: &[LabelCount]) -> Vec<(String, u64)> {
    counts.iter().map(|c| (c.label.clone(), c.games)).collect()
}

/// One report: its name in URLs, its heading, the column names and the rows.
struct Report {
    name: &'static str,
    heading: &'static str,
    what: &'static str,
    rows: Vec<(String, u64)>,
    /// What the chart draws when it is not `rows` (years grouped into decades).
    chart: Option<(&'static str, Vec<(String, u64)>)>,
    /// Rows of games without a value, kept out of the chart.
    missing: Option<(&'static str, u64)>,
}

/// Years grouped into decades, for charts of more years than fit.
fn decades(years: &BTreeMap<u16, u64>) -> Vec<(String, u64)> {
    let mut decades: BTreeMap<u16, u64> = BTreeMap::new();
    for (year, count) in years {
        *decades.entry(year - year % 10).or_default() += count;
    }
    decades
        .into_iter()
        .map(|(decade, count)| (format!("{decade}s"), count))
        .collect()
}

fn reports(a: &CatalogCounts) -> [Report; 4] {
    [
        Report {
            name: "platforms",
            heading: "Games per platform",
            what: "platform",
            rows: label_rows(&a.platforms),
            chart: None,
            missing: None,
        },
        Report {
            name: "genres",
            heading: "Games per genre",
            what: "genre",
            rows: label_rows(&a.genres),
            chart: None,
            missing: None,
        },
        Report {
            name: "years",
            heading: "Games per release year",
            what: "year",
            rows: a.years.iter().map(|(y, n)| (y.to_string(), *n)).collect(),
            chart: (a.years.len() > CHART_ROWS).then(|| ("decade", decades(&a.years))),
            missing: Some(("No release date", a.undated)),
        },
        Report {
            name: "ratings",
            heading: "Rating distribution",
            what: "rating",
            rows: (0..10)
                .map(|i| {
                    let label = if i == 9 {
                        "9–10".to_owned()
                    } else {
                        format!("{i}–{}", i + 1)
                    };
                    (label, a.ratings[i])
                })
                .collect(),
            chart: None,
            missing: Some(("Not rated", a.unrated)),
        },
    ]
}

fn truncate(label: &str, max: usize) -> String {
    if label.chars().count() <= max {
        label.to_owned()
    } else {
        let mut short: String = label.chars().take(max - 1).collect();
        short.push('…');
        short
    }
}

/// A horizontal bar chart; the numbers are printed at the end of each bar.
fn bar_chart(report: &Report) -> String {
    const WIDTH: u64 = 640;
    const LABELS: u64 = 170;
    const BARS: u64 = 400;
    const ROW: u64 = 26;
    let (what, all) = match &report.chart {
        Some((what, rows)) => (*what, rows),
        None => (report.what, &report.rows),
    };
    let rows = &all[..all.len().min(CHART_ROWS)];
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1);
    let height = rows.len() as u64 * ROW + 8;
    let mut out = Html::default();
    out.raw(&format!(
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-labelledby=\"{n}-chart-title {n}-chart-desc\" xmlns=\"http://www.w3.org/2000/svg\">",
        n = report.name
    ));
    out.raw(&format!("<title id=\"{}-chart-title\">", report.name));
    out.text(report.heading);
    out.raw(&format!("</title><desc id=\"{}-chart-desc\">", report.name));
    let shown = if rows.len() < all.len() {
        format!("The {} largest of {}; ", rows.len(), all.len())
    } else {
        String::new()
    };
    out.text(&format!(
        "{shown}bar chart of games per {what}; the numbers are in the table below."
    ));
    out.raw("</desc>");
    for (i, (label, count)) in rows.iter().enumerate() {
        let y = i as u64 * ROW + 4;
        let w = if *count == 0 {
            0
        } else {
            (count * BARS / max).max(2)
        };
        out.raw(&format!(
            "<text class=\"chart-label\" x=\"{}\" y=\"{}\" text-anchor=\"end\">",
            LABELS - 8,
            y + 14
        ));
        out.text(&truncate(label, 22));
        out.raw(&format!(
            "</text><rect class=\"bar\" x=\"{LABELS}\" y=\"{y}\" width=\"{w}\" height=\"18\" rx=\"2\"></rect><text class=\"chart-value\" x=\"{}\" y=\"{}\">{count}</text>",
            LABELS + w + 6,
            y + 14
        ));
    }
    out.raw("</svg>");
    out.into_string()
}

fn table(report: &Report) -> String {
    let mut out = Html::default();
    out.raw(&format!(
        "<details class=\"numbers\" open><summary>The numbers</summary><div class=\"table-scroll\" tabindex=\"0\" role=\"region\" aria-label=\"{} as a table\"><table><thead><tr><th scope=\"col\">{}</th><th scope=\"col\" class=\"num\">Games</th></tr></thead><tbody>",
        report.heading,
        capitalise(report.what)
    ));
    for (label, count) in &report.rows {
        out.raw("<tr><th scope=\"row\">");
        out.text(label);
        out.raw(&format!("</th><td class=\"num\">{count}</td></tr>"));
    }
    if let Some((label, count)) = report.missing {
        out.raw(&format!(
            "<tr class=\"muted\"><th scope=\"row\">{label}</th><td class=\"num\">{count}</td></tr>"
        ));
    }
    out.raw("</tbody></table></div></details>");
    out.into_string()
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

pub async fn page(viewer: Viewer, State(state): State<AppState>) -> Response {
    let totals = match state.stores.catalog.counts().await {
        Ok(t) => t,
        Err(e) => return failure_page(&viewer, "computing the reports failed", &e),
    };
    let mut body = Html::default();
    body.raw("<h1>Reports</h1>");
    if totals.games == 0 {
        body.raw("<div class=\"empty\"><h2>Nothing to report yet</h2><p>The catalog is empty. Reports appear once games are added.</p><p><a class=\"button\" href=\"/ui/uploads\">Upload a file</a></p></div>");
    } else {
        body.raw(&format!(
            "<p class=\"summary\">Across all {} game{} in the catalog.</p>",
            totals.games,
            if totals.games == 1 { "" } else { "s" }
        ));
        body.raw("<nav class=\"toc\" aria-label=\"Reports\"><ul>");
        for report in reports(&totals) {
            body.raw(&format!(
                "<li><a href=\"#{}\">{}</a></li>",
                report.name, report.heading
            ));
        }
        body.raw("</ul></nav><div class=\"reports\">");
        for report in reports(&totals) {
            body.raw(&format!(
                "<section class=\"report panel\" id=\"{n}\" aria-labelledby=\"{n}-heading\"><div class=\"page-head\"><h2 id=\"{n}-heading\">{h}</h2><a class=\"button secondary\" href=\"/ui/reports/{n}.csv\" download>Download CSV<span class=\"visually-hidden\"> of {h}</span></a></div>",
                n = report.name,
                h = report.heading
            ));
            if report.rows.is_empty() {
                body.raw(&format!(
                    "<p class=\"empty\">No game has a {} yet.</p>",
                    report.what
                ));
            } else {
                body.raw(&bar_chart(&report));
            }
            body.raw(&table(&report));
            body.raw("</section>");
        }
        body.raw("</div>");
    }
    html_response(
        StatusCode::OK,
        layout(&viewer, Section::Reports, "Reports", &body.into_string()),
    )
}

/// `/ui/reports/{name}.csv`: one report as CSV.
pub async fn csv(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(file): Path<String>,
) -> Response {
    let Some(name) = file.strip_suffix(".csv") else {
        return not_a_report(&viewer);
    };
    let totals = match state.stores.catalog.counts().await {
        Ok(t) => t,
        Err(e) => return failure_page(&viewer, "computing the reports failed", &e),
    };
    let Some(report) = reports(&totals).into_iter().find(|r| r.name == name) else {
        return not_a_report(&viewer);
    };
    let mut out = format!("{},games\r\n", report.what);
    for (label, count) in &report.rows {
        out.push_str(&format!("{},{count}\r\n", csv_field(label)));
    }
    if let Some((label, count)) = report.missing {
        out.push_str(&format!("{},{count}\r\n", csv_field(label)));
    }
    let disposition = format!("attachment; filename=\"ludex-{}.csv\"", report.name);
    let mut response = (StatusCode::OK, out).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn not_a_report(viewer: &Viewer) -> Response {
    error_page(
        viewer,
        StatusCode::NOT_FOUND,
        "No such report",
        "The reports are platforms.csv, genres.csv, years.csv and ratings.csv.",
    )
}

#[cfg(test)]
mod chart_tests {
    use super::*;

    #[test]
    fn many_years_are_charted_by_decade_and_tabled_by_year() {
        let years: BTreeMap<u16, u64> = (1980..2026).map(|y| (y, 1)).collect();
        assert_eq!(
            decades(&years),
            [
                ("1980s", 10),
                ("1990s", 10),
                ("2000s", 10),
                ("2010s", 10),
                ("2020s", 6)
            ]
            .map(|(d, n)| (d.to_owned(), n))
        );
        let report = Report {
            name: "years",
            heading: "Games per release year",
            what: "year",
            rows: years.iter().map(|(y, n)| (y.to_string(), *n)).collect(),
            chart: Some(("decade", decades(&years))),
            missing: None,
        };
        let svg = bar_chart(&report);
        assert!(svg.contains(">2020s<"), "{svg}");
        assert!(!svg.contains(">1985<"));
        assert!(svg.contains("bar chart of games per decade"));
        assert!(!svg.contains("largest"), "every decade is drawn");
    }
}
