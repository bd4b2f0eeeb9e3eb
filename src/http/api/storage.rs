//! Storage hygiene endpoints: garbage collection, retention rules and runs, backup, storage
//! figures; and the Prometheus metrics at `/metrics`.

use std::path::PathBuf;

use actix_web::{HttpResponse, web};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use super::dto::{
    BackupReport, BackupRequest, FeedQuota, GcReport, Maintenance, MaintenanceChange, QuotaChange,
    RetentionReport, Rules, RunRequest, StorageStats, SyncReport, UpstreamTest,
};
use super::error::{ApiError, ErrorBody};
use super::{Api, run};
use crate::domain::access::{FeedAdmin, Pull};
use crate::domain::maintenance::gc::GcOptions;

/// Collects garbage now, while serving (administrators).
#[utoipa::path(post, path = "/api/v1/gc", request_body = RunRequest,
    responses((status = 200, body = GcReport), (status = 403, body = ErrorBody)))]
pub async fn gc(
    opts: web::Data<GcOptions>,
    Api(access): Api,
    body: web::Json<RunRequest>,
) -> Result<HttpResponse, ApiError> {
    let opts = GcOptions {
        dry_run: body.dry_run,
        ..**opts
    };
    let report = run(move || {
        let admin = access.admin()?;
        tracing::info!(dry_run = opts.dry_run, "garbage collection asked");
        admin.gc(opts)
    })
    .await?;
    Ok(HttpResponse::Ok().json(GcReport::from(report)))
}

/// A feed's retention rules (feed admin).
#[utoipa::path(get, path = "/api/v1/feeds/{feed}/retention", params(("feed" = String, Path)),
    responses((status = 200, body = Rules), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn retention(
    Api(access): Api,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let feed = path.into_inner();
    let rules = run(move || access.feed::<FeedAdmin>(&feed)?.retention()).await?;
    Ok(HttpResponse::Ok().json(Rules::from(rules)))
}

/// Replaces a feed's retention rules; an empty object switches them off (feed admin).
#[utoipa::path(put, path = "/api/v1/feeds/{feed}/retention", params(("feed" = String, Path)), request_body = Rules,
    responses((status = 200, body = Rules), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn set_retention(
    Api(access): Api,
    path: web::Path<String>,
    body: web::Json<Rules>,
) -> Result<HttpResponse, ApiError> {
    let feed = path.into_inner();
    let rules: crate::domain::maintenance::retention::Rules = body.into_inner().into();
    let rules = run(move || {
        let f = access.feed::<FeedAdmin>(&feed)?;
        f.set_retention(&rules)?;
        tracing::info!(feed, "retention rules changed");
        f.retention()
    })
    .await?;
    Ok(HttpResponse::Ok().json(Rules::from(rules)))
}

/// Applies a feed's retention rules now, or lists what they would delete (feed admin).
#[utoipa::path(post, path = "/api/v1/feeds/{feed}/retention/run", params(("feed" = String, Path)), request_body = RunRequest,
    responses((status = 200, body = RetentionReport), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn run_retention(
    Api(access): Api,
    path: web::Path<String>,
    body: web::Json<RunRequest>,
) -> Result<HttpResponse, ApiError> {
    let feed = path.into_inner();
    let dry_run = body.dry_run;
    let report = run(move || access.feed::<FeedAdmin>(&feed)?.run_retention(dry_run)).await?;
    Ok(HttpResponse::Ok().json(RetentionReport::from(report)))
}

/// Syncs a connector feed now: fetches the tags its sync rules name (feed admin).
#[utoipa::path(post, path = "/api/v1/feeds/{feed}/sync", params(("feed" = String, Path)),
    responses((status = 200, body = SyncReport), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn sync(Api(access): Api, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let feed = path.into_inner();
    let report = run(move || access.feed::<FeedAdmin>(&feed)?.upstream().sync()).await?;
    Ok(HttpResponse::Ok().json(SyncReport::from(report)))
}

/// Checks a connector feed's upstream and its credentials now (feed admin): `ok` and a
/// sentence saying what answered and how, or what is wrong.
#[utoipa::path(post, path = "/api/v1/feeds/{feed}/upstream/test", params(("feed" = String, Path)),
    responses((status = 200, body = UpstreamTest), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn test_upstream(
    Api(access): Api,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let feed = path.into_inner();
    let checked = run(move || access.feed::<FeedAdmin>(&feed)?.upstream().test_upstream()).await?;
    Ok(HttpResponse::Ok().json(UpstreamTest::from(checked)))
}

/// The last sync report of a connector feed (feed admin); `null` before the first.
#[utoipa::path(get, path = "/api/v1/feeds/{feed}/sync", params(("feed" = String, Path)),
    responses((status = 200, body = Option<SyncReport>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn sync_status(
    Api(access): Api,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let feed = path.into_inner();
    let report = run(move || access.feed::<FeedAdmin>(&feed)?.upstream().sync_status()).await?;
    Ok(HttpResponse::Ok().json(report.map(SyncReport::from)))
}

/// Writes a consistent backup into a directory on the server's machine while serving
/// (administrators).
#[utoipa::path(post, path = "/api/v1/backup", request_body = BackupRequest,
    responses((status = 200, body = BackupReport), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn backup(
    Api(access): Api,
    body: web::Json<BackupRequest>,
) -> Result<HttpResponse, ApiError> {
    let dir = PathBuf::from(&body.dir);
    let report = run(move || {
        let admin = access.admin()?;
        tracing::info!(dir = %dir.display(), "backup asked");
        admin.backup(&dir)
    })
    .await?;
    Ok(HttpResponse::Ok().json(BackupReport::from(report)))
}

/// A feed's storage quota and usage (whoever may pull from it).
#[utoipa::path(get, path = "/api/v1/feeds/{feed}/quota", params(("feed" = String, Path)),
    responses((status = 200, body = FeedQuota), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn quota(Api(access): Api, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let feed = path.into_inner();
    let q = run(move || access.feed::<Pull>(&feed)?.quota()).await?;
    Ok(HttpResponse::Ok().json(FeedQuota::from(q)))
}

/// Sets or removes a feed's storage quota (administrators; audited). Pushes that would
/// take the feed past it are refused with `DENIED`; a quota below the usage refuses new
/// blobs until enough is deleted.
#[utoipa::path(put, path = "/api/v1/feeds/{feed}/quota", params(("feed" = String, Path)), request_body = QuotaChange,
    responses((status = 200, body = FeedQuota), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn set_quota(
    Api(access): Api,
    path: web::Path<String>,
    body: web::Json<QuotaChange>,
) -> Result<HttpResponse, ApiError> {
    let feed = path.into_inner();
    let bytes = body.into_inner().bytes;
    let q = run(move || {
        access.admin()?.set_quota(&feed, bytes)?;
        access.feed::<Pull>(&feed)?.quota()
    })
    .await?;
    Ok(HttpResponse::Ok().json(FeedQuota::from(q)))
}

/// Read-only mode: whether it is on, since when, who turned it on and why (any
/// authenticated caller).
#[utoipa::path(get, path = "/api/v1/maintenance",
    responses((status = 200, body = Maintenance)))]
pub async fn maintenance(Api(access): Api) -> Result<HttpResponse, ApiError> {
    let mode = run(move || access.read_only()).await?;
    Ok(HttpResponse::Ok().json(Maintenance::from(mode)))
}

/// Turns read-only mode on or off on every node (administrators; audited). It holds across
/// restarts until turned off.
#[utoipa::path(put, path = "/api/v1/maintenance", request_body = MaintenanceChange,
    responses((status = 200, body = Maintenance), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn set_maintenance(
    Api(access): Api,
    body: web::Json<MaintenanceChange>,
) -> Result<HttpResponse, ApiError> {
    let change = body.into_inner();
    let mode = run(move || {
        access
            .admin()?
            .set_read_only(change.read_only, &change.reason)
    })
    .await?;
    Ok(HttpResponse::Ok().json(Maintenance::from(mode)))
}

/// Blobs and bytes stored, in all and per feed (administrators).
#[utoipa::path(get, path = "/api/v1/storage",
    responses((status = 200, body = StorageStats), (status = 403, body = ErrorBody)))]
pub async fn storage(Api(access): Api) -> Result<HttpResponse, ApiError> {
    let stats = run(move || access.admin()?.storage()).await?;
    Ok(HttpResponse::Ok().json(StorageStats::from(stats)))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FeedLabel {
    feed: String,
}

type Metrics = prometheus_client::registry::Registry;

fn gauge(metrics: &mut Metrics, name: &str, help: &str, value: u64) {
    let g = Gauge::<i64>::default();
    g.set(i64::try_from(value).unwrap_or(i64::MAX));
    metrics.register(name, help, g);
}

/// A gauge with one value per feed.
fn per_feed(
    metrics: &mut Metrics,
    name: &str,
    help: &str,
    values: impl IntoIterator<Item = (String, u64)>,
) {
    let family = Family::<FeedLabel, Gauge<i64>>::default();
    for (feed, value) in values {
        family
            .get_or_create(&FeedLabel { feed })
            .set(i64::try_from(value).unwrap_or(i64::MAX));
    }
    metrics.register(name, help, family);
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct RuleLabel {
    rule: String,
}

/// Each replication rule's lag (seconds and events) and conflicts.
fn replication_metrics(m: &mut Metrics, rules: &[crate::domain::replication::RuleInfo]) {
    type Value = fn(&crate::domain::replication::Status) -> u64;
    let rows: [(&str, &str, Value); 3] = [
        (
            "replication_lag_seconds",
            "Seconds since the oldest event a replication rule has not yet carried (0: caught up)",
            |s| s.lag_seconds,
        ),
        (
            "replication_lag_events",
            "Events of the feed a replication rule has not yet carried",
            |s| s.lag_events,
        ),
        (
            "replication_conflicts",
            "Versions the target holds on another digest, left alone",
            |s| s.conflicts.len() as u64,
        ),
    ];
    for (name, help, value) in rows {
        let family = Family::<RuleLabel, Gauge<i64>>::default();
        for r in rules {
            family
                .get_or_create(&RuleLabel {
                    rule: r.name.clone(),
                })
                .set(i64::try_from(value(&r.status)).unwrap_or(i64::MAX));
        }
        m.register(name, help, family);
    }
}

/// Each feed's usage, and its quota when it has one.
fn quota_metrics(
    m: &mut Metrics,
    quotas: &[(
        String,
        Option<crate::domain::quota::Quota>,
        crate::domain::quota::Usage,
    )],
) {
    per_feed(
        m,
        "feed_usage_bytes",
        "Bytes the feed's quota counts (each blob once per feed)",
        quotas
            .iter()
            .map(|(feed, _, usage)| (feed.clone(), usage.bytes)),
    );
    per_feed(
        m,
        "feed_quota_bytes",
        "The feed's storage quota, for feeds that have one",
        quotas
            .iter()
            .filter_map(|(feed, quota, _)| Some((feed.clone(), quota.as_ref()?.bytes))),
    );
}

// GET /metrics — Prometheus text format (administrators: Basic `api:<key>` in a scrape config).
pub async fn metrics(Api(access): Api) -> Result<HttpResponse, ApiError> {
    let (stats, last_gc, retention, read_only, quotas, rules) = run(move || {
        let admin = access.admin()?;
        let stats = admin.storage()?;
        Ok((
            stats,
            admin.last_gc(),
            admin.last_retention(),
            access.read_only()?,
            admin.quotas()?,
            access.replication_rules(None)?,
        ))
    })
    .await?;
    let mut m = Metrics::with_prefix("semdock");
    quota_metrics(&mut m, &quotas);
    replication_metrics(&mut m, &rules);
    gauge(
        &mut m,
        "read_only",
        "1 while read-only mode refuses writes",
        u64::from(read_only.is_some()),
    );
    gauge(&mut m, "storage_blobs", "Blob files stored", stats.blobs);
    gauge(
        &mut m,
        "storage_bytes",
        "Bytes of blob files stored",
        stats.bytes,
    );
    let feeds = &stats.feeds;
    per_feed(
        &mut m,
        "feed_bytes",
        "Bytes of the blobs linked to a feed's repositories",
        feeds.iter().map(|f| (f.feed.clone(), f.bytes)),
    );
    per_feed(
        &mut m,
        "feed_blobs",
        "Blobs linked to a feed's repositories",
        feeds.iter().map(|f| (f.feed.clone(), f.blobs)),
    );
    per_feed(
        &mut m,
        "feed_repositories",
        "Repositories in a feed",
        feeds.iter().map(|f| (f.feed.clone(), f.repositories)),
    );
    per_feed(
        &mut m,
        "retention_last_run_deletions",
        "Tags and manifests the feed's last retention run deleted",
        retention.iter().map(|(feed, _, n)| (feed.clone(), *n)),
    );
    per_feed(
        &mut m,
        "retention_last_run_timestamp_seconds",
        "When the feed's last retention run happened",
        retention.iter().map(|(feed, at, _)| (feed.clone(), *at)),
    );
    if let Some(gc) = last_gc {
        gauge(
            &mut m,
            "gc_last_run_timestamp_seconds",
            "When the last collection started",
            gc.started,
        );
        gauge(
            &mut m,
            "gc_last_run_blobs_removed",
            "Blobs the last collection removed",
            gc.blobs_removed,
        );
        gauge(
            &mut m,
            "gc_last_run_bytes_freed",
            "Bytes the last collection freed",
            gc.bytes_freed,
        );
        gauge(
            &mut m,
            "gc_last_run_uploads_expired",
            "Upload sessions the last collection ended",
            gc.uploads_expired,
        );
    }
    let encoded = (|| {
        let mut body = String::new();
        prometheus_client::encoding::text::encode_registry(&mut body, &m)?;
        body.push_str(&crate::metrics::get().encode()?);
        prometheus_client::encoding::text::encode_eof(&mut body)?;
        Ok::<_, std::fmt::Error>(body)
    })();
    let body =
        encoded.map_err(|e| crate::domain::Error::Internal(format!("metrics encoding: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(body))
}
