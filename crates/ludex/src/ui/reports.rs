//! Reports: games per platform, per genre, per release year and the rating distribution, each
//! as a server-rendered SVG bar chart, a table of the numbers and a CSV download.
//!
//! The numbers are the store's aggregates (`Catalog::counts`), kept as games are written: a
//! view costs the number of distinct platforms, genres and years, whatever the catalog's size.

use super::html::csv_field;
use super::{Section, Viewer, error_page, failure_page, html_response, page as layout};
use crate::api::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ludex_domain::CatalogCounts;
use ludex_domain::counts::LabelCount;
use maud::{Markup, html};
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
fn bar_chart(report: &Report) -> Markup {
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
    let n = report.name;
    html! {
        svg.chart viewBox={ "0 0 " (WIDTH) " " (height) } role="img"
            aria-labelledby={ (n) "-chart-title " (n) "-chart-desc" } xmlns="http://www.w3.org/2000/svg" {
            title #{ (n) "-chart-title" } { (report.heading) }
            desc #{ (n) "-chart-desc" } {
                @if rows.len() < all.len() {
                    "The " (rows.len()) " largest of " (all.len()) "; "
                }
                "bar chart of games per " (what) "; the numbers are in the table below."
            }
            @for (i, (label, count)) in rows.iter().enumerate() {
                @let y = i as u64 * ROW + 4;
                @let w = if *count == 0 { 0 } else { (count * BARS / max).max(2) };
                text.chart-label x=(LABELS - 8) y=(y + 14) text-anchor="end" { (truncate(label, 22)) }
                rect.bar x=(LABELS) y=(y) width=(w) height="18" rx="2" {}
                text.chart-value x=(LABELS + w + 6) y=(y + 14) { (count) }
            }
        }
    }
}

fn table(report: &Report) -> Markup {
    html! {
        details.numbers open {
            summary { "The numbers" }
            div.table-scroll tabindex="0" role="region" aria-label={ (report.heading) " as a table" } {
                table {
                    thead {
                        tr {
                            th scope="col" { (capitalise(report.what)) }
                            th.num scope="col" { "Games" }
                        }
                    }
                    tbody {
                        @for (label, count) in &report.rows {
                            tr { th scope="row" { (label) } td.num { (count) } }
                        }
                        @if let Some((label, count)) = report.missing {
                            tr.muted { th scope="row" { (label) } td.num { (count) } }
                        }
                    }
                }
            }
        }
    }
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
    let body = html! {
        h1 { "Reports" }
        @if totals.games == 0 {
            div.empty {
                h2 { "Nothing to report yet" }
                p { "The catalog is empty. Reports appear once games are added." }
                p { a.button href="/ui/uploads" { "Upload a file" } }
            }
        } @else {
            p.summary {
                "Across all " (totals.games) " game" @if totals.games != 1 { "s" } " in the catalog."
            }
            nav.toc aria-label="Reports" {
                ul {
                    @for report in reports(&totals) {
                        li { a href={ "#" (report.name) } { (report.heading) } }
                    }
                }
            }
            div.reports {
                @for report in reports(&totals) {
                    @let n = report.name;
                    section.report.panel #(n) aria-labelledby={ (n) "-heading" } {
                        div.page-head {
                            h2 #{ (n) "-heading" } { (report.heading) }
                            a.button.secondary href={ "/ui/reports/" (n) ".csv" } download {
                                "Download CSV"
                                span.visually-hidden { " of " (report.heading) }
                            }
                        }
                        @if report.rows.is_empty() {
                            p.empty { "No game has a " (report.what) " yet." }
                        } @else {
                            (bar_chart(&report))
                        }
                        (table(&report))
                    }
                }
            }
        }
    };
    html_response(
        StatusCode::OK,
        layout(&viewer, Section::Reports, "Reports", body),
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
        let svg = bar_chart(&report).into_string();
        assert!(svg.contains(">2020s<"), "{svg}");
        assert!(!svg.contains(">1985<"));
        assert!(svg.contains("bar chart of games per decade"));
        assert!(!svg.contains("largest"), "every decade is drawn");
    }
}
