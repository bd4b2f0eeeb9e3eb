//! What the registry counts while it runs, for `/metrics`: requests by route, method and
//! status class with their latency and bytes; pushes, pulls and promotions per feed;
//! authentication failures by kind; metadata commit latency; and the process itself
//! (CPU, resident memory, open files, start time). The storage gauges are computed per
//! scrape in the HTTP layer.
//!
//! One process-wide set (`get()`), so that every layer records without being handed it;
//! label values are bounded (route patterns, feeds, fixed kinds), never raw paths.

use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route pattern (`/v2/{name}/manifests/{reference}`), or `unmatched`.
    pub route: String,
    pub method: String,
    /// `2xx`, `3xx`, `4xx`, `5xx`.
    pub status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeedLabels {
    pub feed: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    pub feed: String,
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// `password`, `api_key`, `token`, `rate_limited`.
    pub kind: String,
}

/// Every live metric.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub request_seconds: Family<RouteLabels, Histogram>,
    pub request_bytes: Counter,
    pub response_bytes: Counter,
    pub pushes: Family<FeedLabels, Counter>,
    pub pulls: Family<FeedLabels, Counter>,
    pub promotions: Family<FeedLabels, Counter>,
    /// Requests a connector feed made to its upstream, by kind (manifest, blob, check).
    pub upstream_requests: Family<UpstreamLabels, Counter>,
    /// Version tags a connector's upstream moved while semdock kept the pinned digest.
    pub upstream_drift: Family<FeedLabels, Counter>,
    pub auth_failures: Family<KindLabels, Counter>,
    pub commit_seconds: Histogram,
    pub open_uploads: Gauge,
    /// Whole-blob reads served, by how they were checked: `hashed` or `fingerprint`.
    pub blob_full_reads: Family<CheckLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckLabels {
    /// `hashed`: the bytes were hashed as they went out; `fingerprint`: verified before,
    /// and the store reports no change since.
    pub check: &'static str,
}

fn build() -> Metrics {
    let mut registry = Registry::with_prefix("semdock");
    let requests = Family::<RequestLabels, Counter>::default();
    registry.register(
        "http_requests",
        "HTTP requests answered, by route pattern, method and status class",
        requests.clone(),
    );
    let request_seconds = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
        Histogram::new(exponential_buckets(0.000_1, 4.0, 10))
    });
    registry.register(
        "http_request_duration_seconds",
        "Time from a request's arrival to its response's head, by route pattern",
        request_seconds.clone(),
    );
    let request_bytes = Counter::default();
    registry.register(
        "http_request_body_bytes",
        "Bytes of request bodies declared by Content-Length",
        request_bytes.clone(),
    );
    let response_bytes = Counter::default();
    registry.register(
        "http_response_body_bytes",
        "Bytes of response bodies of known length",
        response_bytes.clone(),
    );
    let pushes = Family::<FeedLabels, Counter>::default();
    registry.register(
        "manifest_pushes",
        "Manifests stored, per feed",
        pushes.clone(),
    );
    let pulls = Family::<FeedLabels, Counter>::default();
    registry.register(
        "manifest_pulls",
        "Manifest GETs answered, per feed",
        pulls.clone(),
    );
    let promotions = Family::<FeedLabels, Counter>::default();
    registry.register(
        "promotions",
        "Promotions and retags, per target feed",
        promotions.clone(),
    );
    let upstream_requests = Family::<UpstreamLabels, Counter>::default();
    registry.register(
        "upstream_requests",
        "Requests connector feeds made to their upstream registries, per feed and kind",
        upstream_requests.clone(),
    );
    let upstream_drift = Family::<FeedLabels, Counter>::default();
    registry.register(
        "upstream_drift",
        "Version tags an upstream moved to another digest while the pinned one is kept, per connector feed",
        upstream_drift.clone(),
    );
    let auth_failures = Family::<KindLabels, Counter>::default();
    registry.register(
        "auth_failures",
        "Refused credentials, by kind: password, api_key, token, rate_limited",
        auth_failures.clone(),
    );
    let commit_seconds = Histogram::new(exponential_buckets(0.000_05, 4.0, 10));
    registry.register(
        "metadata_commit_duration_seconds",
        "Time a metadata write takes, commit and shared flush included",
        commit_seconds.clone(),
    );
    let open_uploads = Gauge::default();
    registry.register(
        "upload_sessions_open",
        "Upload sessions open now (counted since the start)",
        open_uploads.clone(),
    );
    let blob_full_reads = Family::<CheckLabels, Counter>::default();
    registry.register(
        "blob_full_reads",
        "Whole-blob reads delivered, by check: hashed as they went out, or fingerprint (verified before, unchanged since)",
        blob_full_reads.clone(),
    );
    Metrics {
        registry,
        requests,
        request_seconds,
        request_bytes,
        response_bytes,
        pushes,
        pulls,
        promotions,
        upstream_requests,
        upstream_drift,
        auth_failures,
        commit_seconds,
        open_uploads,
        blob_full_reads,
    }
}

/// The process's metrics.
pub fn get() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(build)
}

impl Metrics {
    #[must_use]
    pub fn feed(feed: &str) -> FeedLabels {
        FeedLabels {
            feed: feed.to_owned(),
        }
    }

    /// The class label of an HTTP status, without an allocation per request.
    #[must_use]
    pub fn status_class(status: u16) -> &'static str {
        match status / 100 {
            1 => "1xx",
            2 => "2xx",
            3 => "3xx",
            4 => "4xx",
            _ => "5xx",
        }
    }

    /// Counts a promotion into `feed`.
    pub fn promotion(&self, feed: &str) {
        self.promotions.get_or_create(&Self::feed(feed)).inc();
    }

    pub fn auth_failure(&self, kind: &str) {
        self.auth_failures
            .get_or_create(&KindLabels {
                kind: kind.to_owned(),
            })
            .inc();
    }

    /// The live metrics and the process's, as `OpenMetrics` text without the final `# EOF`.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut process = Registry::with_prefix("process");
        for (name, help, value) in process_figures() {
            let g = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
            g.set(value);
            process.register(name, help, g);
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode_registry(&mut text, &self.registry)?;
        prometheus_client::encoding::text::encode_registry(&mut text, &process)?;
        Ok(text)
    }
}

/// CPU seconds, resident bytes, open files and start time, from `/proc/self` on Linux.
#[cfg_attr(not(target_os = "linux"), allow(unused_mut))]
fn process_figures() -> Vec<(&'static str, &'static str, f64)> {
    let mut out = Vec::new();
    #[cfg(target_os = "linux")]
    {
        // SAFETY: sysconf only reads a system constant.
        let (ticks, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        #[allow(clippy::cast_precision_loss)]
        let (ticks, page) = (ticks.max(1) as f64, page.max(1) as f64);
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // Fields after the command name, which is in parentheses and may hold spaces.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.split_whitespace().collect())
                .unwrap_or_default();
            let field = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
            // utime and stime are fields 14 and 15 of stat(5): 11 and 12 after the name.
            if let (Some(user), Some(system)) = (field(11), field(12)) {
                out.push((
                    "cpu_seconds_total",
                    "CPU time of the process, user and system",
                    (user + system) / ticks,
                ));
            }
            if let (Some(start), Ok(uptime)) = (field(19), std::fs::read_to_string("/proc/uptime"))
                && let Some(up) = uptime
                    .split_whitespace()
                    .next()
                    .and_then(|u| u.parse::<f64>().ok())
            {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64());
                out.push((
                    "start_time_seconds",
                    "When the process started, in seconds since the epoch",
                    now - up + start / ticks,
                ));
            }
        }
        if let Ok(statm) = std::fs::read_to_string("/proc/self/statm")
            && let Some(resident) = statm
                .split_whitespace()
                .nth(1)
                .and_then(|r| r.parse::<f64>().ok())
        {
            out.push((
                "resident_memory_bytes",
                "Resident memory of the process",
                resident * page,
            ));
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            #[allow(clippy::cast_precision_loss)]
            out.push((
                "open_fds",
                "Open file descriptors of the process",
                fds.count() as f64,
            ));
        }
    }
    out
}
