//! `semdock quota FEED`: a feed's storage quota and usage; administrators set or remove it.

use super::target::{Request, Target};
use crate::domain::access::Pull;
use crate::http::api::dto::{FeedQuota, QuotaChange};

fn size(n: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let gib = n as f64 / 1_073_741_824.0;
    if gib >= 1.0 {
        format!("{gib:.2} GiB")
    } else {
        format!("{n} bytes")
    }
}

pub(super) fn quota(
    target: &Target,
    feed: &str,
    set_bytes: Option<u64>,
    remove: bool,
) -> anyhow::Result<()> {
    let path = format!("/feeds/{feed}/quota");
    let q: FeedQuota = if set_bytes.is_some() || remove {
        let change = QuotaChange { bytes: set_bytes };
        target.run(Request::send("PUT", path, &change), |a| {
            a.admin()?.set_quota(feed, change.bytes)?;
            Ok(a.feed::<Pull>(feed)?.quota()?.into())
        })?
    } else {
        target.run(Request::get(path), |a| {
            Ok(a.feed::<Pull>(feed)?.quota()?.into())
        })?
    };
    println!(
        "{feed}: {} in {} blobs{}",
        size(q.used_bytes),
        q.blobs,
        q.quota_bytes.map_or_else(
            || " (no quota)".to_owned(),
            |b| format!(" of a quota of {}", size(b))
        )
    );
    Ok(())
}
