//! Route labels for the request log, and Prometheus metrics at `/metrics` (`--metrics`).
//!
//! Requests are labelled with their route template (`/api/tasks/:id`), never the raw path:
//! the set of templates is fixed when the app is built, and anything else (an unknown path)
//! is `unmatched`, so the number of series is bounded. Each (route, method) pair has its own
//! pre-allocated series: histogram buckets are atomics, and the per-status counters sit
//! behind that series' own small lock, so requests to different routes never contend.
//!
//! Gauges come from [`Service::gauges`], the place to add a new one.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use poem::http::{Method, StatusCode, header};
use poem::{Request, Response};

use super::error::{ErrorCode, Problem};
use crate::service::Service;

/// The route label of requests that matched no route.
pub const UNMATCHED: &str = "unmatched";

/// Routes served outside the OpenAPI document.
const OTHER_ROUTES: &[&str] = &[
    "/",
    "/favicon.ico",
    "/docs",
    "/api/openapi.json",
    "/metrics",
    "/ical/:file",
];

/// Methods with their own series; any other is counted as `OTHER`.
const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER",
];

/// Upper bounds of the latency histogram's buckets, in seconds (Prometheus' defaults).
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The route templates the app serves, known when it is built.
pub struct Routes {
    /// Every template's label, `UNMATCHED` last.
    labels: Vec<Arc<str>>,
    /// poem's pattern of each template -> its position in `labels`.
    index: HashMap<Arc<str>, usize>,
}

impl Routes {
    /// The templates of the published spec's paths and of the routes outside it. poem matches
    /// `/tasks/{id}` under the pattern `/api/tasks/:param0` (poem-openapi numbers path
    /// parameters by position); its label keeps the spec's name: `/api/tasks/:id`.
    pub fn from_spec(published: &str) -> Self {
        let spec: serde_json::Value = serde_json::from_str(published).unwrap_or_default();
        let mut routes: Vec<(String, String)> = OTHER_ROUTES
            .iter()
            .map(|r| (r.to_string(), r.to_string()))
            .collect();
        if let Some(paths) = spec["paths"].as_object() {
            for path in paths.keys() {
                routes.push(spec_route(path));
            }
        }
        routes.push((String::new(), UNMATCHED.to_string()));
        let index = routes
            .iter()
            .take(routes.len() - 1)
            .enumerate()
            .map(|(i, (pattern, _))| (Arc::from(pattern.as_str()), i))
            .collect();
        let labels = routes.into_iter().map(|(_, label)| label.into()).collect();
        Self { labels, index }
    }

    /// The label of a matched pattern: itself when known, else [`UNMATCHED`] (e.g. an unknown
    /// path under `/api`, which poem reports with the pattern `/api`).
    pub fn label(&self, pattern: Option<&str>) -> &Arc<str> {
        &self.labels[self.position(pattern)]
    }

    fn position(&self, pattern: Option<&str>) -> usize {
        pattern
            .and_then(|p| self.index.get(p).copied())
            .unwrap_or(self.labels.len() - 1)
    }
}

/// poem's pattern for a path of the spec and its label: `/tasks/{id}` is matched as
/// `/api/tasks/:param0` (poem-openapi numbers path parameters by position) and labelled
/// `/api/tasks/:id`.
fn spec_route(path: &str) -> (String, String) {
    let (mut pattern, mut label) = (String::from("/api"), String::from("/api"));
    let mut params = 0;
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => {
                pattern.push_str(&format!("/:param{params}"));
                label.push_str(&format!("/:{name}"));
                params += 1;
            }
            None => {
                pattern.push('/');
                pattern.push_str(segment);
                label.push('/');
                label.push_str(segment);
            }
        }
    }
    (pattern, label)
}

/// poem's route pattern for a path of the spec (`/tasks/{id}` -> `/api/tasks/:param0`).
pub(super) fn poem_pattern(path: &str) -> String {
    spec_route(path).0
}

/// One (route, method) series.
#[derive(Default)]
struct Series {
    /// Requests per bucket (not cumulative; the last slot is above every bound).
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
    count: AtomicU64,
    /// Requests per status code, in order of first appearance.
    statuses: Mutex<Vec<(u16, u64)>>,
}

/// The request metrics of one server.
pub struct Metrics {
    routes: Arc<Routes>,
    /// `routes.labels.len() * METHODS.len()` series, route-major.
    series: Vec<Series>,
    /// When set, a scrape needs `Authorization: Bearer <token>`.
    token: Option<String>,
}

impl Metrics {
    pub fn new(routes: Arc<Routes>, token: Option<String>) -> Self {
        let series = (0..routes.labels.len() * METHODS.len())
            .map(|_| Series::default())
            .collect();
        Self {
            routes,
            series,
            token,
        }
    }

    /// Counts one finished request.
    pub fn record(
        &self,
        method: &Method,
        pattern: Option<&str>,
        status: StatusCode,
        took: Duration,
    ) {
        let method = METHODS
            .iter()
            .position(|m| *m == method.as_str())
            .unwrap_or(METHODS.len() - 1);
        let series = &self.series[self.routes.position(pattern) * METHODS.len() + method];
        let seconds = took.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS.len());
        series.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        series.sum_micros.fetch_add(micros, Ordering::Relaxed);
        series.count.fetch_add(1, Ordering::Relaxed);
        let mut statuses = series
            .statuses
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let code = status.as_u16();
        match statuses.iter_mut().find(|(s, _)| *s == code) {
            Some((_, n)) => *n += 1,
            None => statuses.push((code, 1)),
        }
    }

    /// Whether the request may read the metrics.
    fn authorized(&self, req: &Request) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let given = req
            .header(header::AUTHORIZATION)
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        // Constant-time comparison: the token is a secret.
        given.len() == token.len()
            && given
                .bytes()
                .zip(token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    /// The Prometheus text exposition (format 0.0.4).
    fn render(&self, gauges: &[crate::service::Gauge]) -> String {
        let mut out = String::new();
        out.push_str("# HELP tasker_build_info The running version of tasker.\n");
        out.push_str("# TYPE tasker_build_info gauge\n");
        let _ = writeln!(
            out,
            "tasker_build_info{{version=\"{}\"}} 1",
            escape(env!("CARGO_PKG_VERSION"))
        );
        for gauge in gauges {
            let _ = writeln!(out, "# HELP {} {}", gauge.name, gauge.help);
            let _ = writeln!(out, "# TYPE {} gauge", gauge.name);
            let _ = writeln!(out, "{} {}", gauge.name, gauge.value);
        }
        out.push_str("# HELP tasker_http_requests_total HTTP requests answered.\n");
        out.push_str("# TYPE tasker_http_requests_total counter\n");
        for (route, method, series) in self.all_series() {
            let statuses = series
                .statuses
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone();
            for (status, n) in statuses {
                let _ = writeln!(
                    out,
                    "tasker_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out.push_str(
            "# HELP tasker_http_request_duration_seconds Time to answer an HTTP request.\n",
        );
        out.push_str("# TYPE tasker_http_request_duration_seconds histogram\n");
        for (route, method, series) in self.all_series() {
            let count = series.count.load(Ordering::Relaxed);
            if count == 0 {
                continue;
            }
            let labels = format!("method=\"{method}\",route=\"{route}\"");
            let mut cumulative = 0;
            for (bound, bucket) in BUCKETS.iter().zip(&series.buckets) {
                cumulative += bucket.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "tasker_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "tasker_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}"
            );
            let sum = series.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(
                out,
                "tasker_http_request_duration_seconds_sum{{{labels}}} {sum}"
            );
            let _ = writeln!(
                out,
                "tasker_http_request_duration_seconds_count{{{labels}}} {count}"
            );
        }
        out
    }

    /// Every series with its (escaped) route and method labels.
    fn all_series(&self) -> impl Iterator<Item = (String, &'static str, &Series)> {
        self.series.iter().enumerate().map(|(i, series)| {
            let route = escape(&self.routes.labels[i / METHODS.len()]);
            (route, METHODS[i % METHODS.len()], series)
        })
    }
}

/// A label value escaped for the text format.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `GET /metrics`.
pub async fn scrape(metrics: &Metrics, service: &Service, req: &Request) -> Response {
    use poem::IntoResponse;
    use poem::error::ResponseError;
    if !metrics.authorized(req) {
        return Problem::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidToken,
            "send `Authorization: Bearer <metrics token>`",
        )
        .as_response();
    }
    match service.gauges().await {
        Ok(gauges) => metrics
            .render(&gauges)
            .with_content_type("text/plain; version=0.0.4; charset=utf-8")
            .into_response(),
        Err(e) => Problem::from(e).as_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_patterns_are_unmatched() {
        let routes = Routes::from_spec(r#"{"paths": {"/tasks/{id}": {}}}"#);
        assert_eq!(
            &**routes.label(Some("/api/tasks/:param0")),
            "/api/tasks/:id"
        );
        assert_eq!(&**routes.label(Some("/api")), UNMATCHED);
        assert_eq!(&**routes.label(None), UNMATCHED);
    }

    #[test]
    fn histogram_is_cumulative() {
        let routes = Arc::new(Routes::from_spec(r#"{"paths": {}}"#));
        let metrics = Metrics::new(routes, None);
        for ms in [1, 20, 20_000] {
            metrics.record(
                &Method::GET,
                Some("/docs"),
                StatusCode::OK,
                Duration::from_millis(ms),
            );
        }
        let text = metrics.render(&[]);
        let line = |prefix: &str| {
            text.lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("{prefix} in {text}"))
                .to_string()
        };
        assert!(line(r#"tasker_http_request_duration_seconds_bucket{method="GET",route="/docs",le="0.005"}"#).ends_with(" 1"));
        assert!(
            line(
                r#"tasker_http_request_duration_seconds_bucket{method="GET",route="/docs",le="10"}"#
            )
            .ends_with(" 2")
        );
        assert!(line(r#"tasker_http_request_duration_seconds_bucket{method="GET",route="/docs",le="+Inf"}"#).ends_with(" 3"));
        assert!(
            line(r#"tasker_http_requests_total{method="GET",route="/docs",status="200"}"#)
                .ends_with(" 3")
        );
    }
}
