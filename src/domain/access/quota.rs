//! Storage quotas through the caller: whoever may pull from a feed sees its quota and usage;
//! only administrators set it (a feed's administrators cannot raise their own).

use super::{Admin, Feed, Pull};
use crate::domain::Error;
use crate::domain::quota::{Quota, Usage};

impl Feed<'_, Pull> {
    /// The feed's quota (if any) and usage.
    pub fn quota(&self) -> Result<(Option<Quota>, Usage), Error> {
        self.registry().quota(self.name())
    }
}

impl Admin<'_> {
    /// Sets (or removes) `feed`'s storage quota, in bytes.
    pub fn set_quota(&self, feed: &str, bytes: Option<u64>) -> Result<(), Error> {
        self.registry().set_quota(feed, bytes, self.caller.user())
    }

    /// Every feed's quota and usage (for the metrics).
    pub fn quotas(&self) -> Result<Vec<(String, Option<Quota>, Usage)>, Error> {
        let registry = self.registry();
        registry
            .feeds()
            .list()?
            .into_iter()
            .map(|(feed, _)| {
                let (q, u) = registry.quota(&feed)?;
                Ok((feed, q, u))
            })
            .collect()
    }
}
