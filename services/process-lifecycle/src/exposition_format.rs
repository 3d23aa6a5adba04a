//! Which text format `/metrics` answers in, chosen from the scraper's
//! `Accept` header the way the Go client does.
//!
//! Why two: `prometheus-client` writes OpenMetrics, which Prometheus asks
//! for and prefers; but `curl`, `promtool check metrics` and many other
//! scrapers read the classic text format (0.0.4), where a counter's HELP
//! and TYPE name the `_total` series itself and `# UNIT`/`# EOF` do not
//! exist. Read as classic text, an OpenMetrics counter has "no help text".

/// The classic text format's content type.
pub const CLASSIC_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The two exposition formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpositionFormat {
    /// `application/openmetrics-text`, when the scraper accepts it.
    OpenMetrics,
    /// The classic text format, for everyone else.
    Classic,
}

impl ExpositionFormat {
    /// OpenMetrics when `accept` names it (with a non-zero quality),
    /// classic text otherwise.
    pub fn negotiate(accept: Option<&str>) -> Self {
        let wants_openmetrics = accept.unwrap_or_default().split(',').any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f64>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            media.eq_ignore_ascii_case("application/openmetrics-text") && !refused
        });
        if wants_openmetrics {
            Self::OpenMetrics
        } else {
            Self::Classic
        }
    }
}

/// Rewrites an OpenMetrics exposition (as `prometheus-client` writes it)
/// in the classic text format: counters' HELP and TYPE name their `_total`
/// series, `info` and `stateset` become gauges, `gaugehistogram` a
/// histogram, and `# UNIT`, `# EOF`, `_created` samples and exemplars go.
pub fn classic_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut pending_help: Option<(&str, &str)> = None;
    let mut counters: Vec<&str> = Vec::new();
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            pending_help = Some((name, help));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let (name, kind) = match kind {
                "counter" => {
                    counters.push(name);
                    (format!("{name}_total"), "counter")
                }
                "info" => (format!("{name}_info"), "gauge"),
                "stateset" => (name.to_owned(), "gauge"),
                "gaugehistogram" => (name.to_owned(), "histogram"),
                "unknown" => (name.to_owned(), "untyped"),
                other => (name.to_owned(), other),
            };
            if let Some((_, help)) = pending_help.take() {
                out.push_str(&format!("# HELP {name} {help}\n"));
            }
            out.push_str(&format!("# TYPE {name} {kind}\n"));
        } else if line.starts_with("# UNIT ") || line == "# EOF" {
        } else if line.starts_with('#') {
            out.push_str(line);
            out.push('\n');
        } else {
            let series = line.split([' ', '{']).next().unwrap_or_default();
            if counters
                .iter()
                .any(|c| series.strip_prefix(c) == Some("_created"))
            {
                continue;
            }
            // An exemplar follows the value after " # ".
            let sample = line.split_once(" # ").map_or(line, |(s, _)| s);
            out.push_str(sample);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_gets_openmetrics_and_everyone_else_classic_text() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(
            ExpositionFormat::negotiate(Some(prometheus)),
            ExpositionFormat::OpenMetrics
        );
        for accept in [
            None,
            Some("*/*"),
            Some("text/plain"),
            Some("application/openmetrics-text;q=0"),
        ] {
            assert_eq!(
                ExpositionFormat::negotiate(accept),
                ExpositionFormat::Classic,
                "{accept:?}"
            );
        }
    }

    #[test]
    fn counters_name_their_total_series_and_openmetrics_only_lines_go() {
        let om = "# HELP app_requests Requests served.\n# TYPE app_requests counter\n# UNIT app_requests requests\napp_requests_total{code=\"200\"} 3 # {trace=\"x\"} 1.0\napp_requests_created 17.0\n# HELP app_up Up.\n# TYPE app_up gauge\napp_up 1\n# EOF\n";
        assert_eq!(
            classic_text(om),
            "# HELP app_requests_total Requests served.\n# TYPE app_requests_total counter\napp_requests_total{code=\"200\"} 3\n# HELP app_up Up.\n# TYPE app_up gauge\napp_up 1\n"
        );
    }
}
