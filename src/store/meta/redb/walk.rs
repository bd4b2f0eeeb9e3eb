//! Walks of redb tables: one record, every record, a page of the keys under a prefix, and
//! ordered walks of sequence numbers.

use std::ops::Bound;

use redb::ReadableTable;

use super::tables::{Bytes, Pair, Str};
use crate::store::meta::codec::{self, decode};
use crate::store::meta::{MetaError, Scan, page};

pub(super) fn get<K, T>(
    table: &impl ReadableTable<K, Bytes>,
    key: K::SelfType<'_>,
) -> Result<Option<T>, MetaError>
where
    K: redb::Key + 'static,
    T: codec::Record,
{
    table
        .get(key)?
        .map(|guard| decode(guard.value()))
        .transpose()
}

/// Every record of a table keyed by name.
pub(super) fn all<T: codec::Record>(
    table: &impl ReadableTable<Str, Bytes>,
) -> Result<Vec<(String, T)>, MetaError> {
    let mut out = Vec::new();
    for entry in table.iter()? {
        let (k, v) = entry?;
        out.push((k.value().to_owned(), decode(v.value())?));
    }
    Ok(out)
}

/// Walks of ascending (or, `newest_first`, descending) sequence numbers merged into one.
pub(super) struct Merged<I: Iterator<Item = Result<u64, MetaError>>> {
    pub(super) walks: Vec<std::iter::Peekable<I>>,
    pub(super) newest_first: bool,
}

impl<I: Iterator<Item = Result<u64, MetaError>>> Iterator for Merged<I> {
    type Item = Result<u64, MetaError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut best: Option<(usize, u64)> = None;
        for (i, walk) in self.walks.iter_mut().enumerate() {
            match walk.peek() {
                Some(Err(_)) => return walk.next(),
                Some(Ok(seq)) => {
                    let better = best.is_none_or(|(_, b)| {
                        if self.newest_first {
                            *seq > b
                        } else {
                            *seq < b
                        }
                    });
                    if better {
                        best = Some((i, *seq));
                    }
                }
                None => {}
            }
        }
        let (i, _) = best?;
        self.walks[i].next()
    }
}

/// `it` forwards, or backwards when `backwards`.
pub(super) fn ordered<'a, T>(
    it: impl DoubleEndedIterator<Item = T> + 'a,
    backwards: bool,
) -> Box<dyn Iterator<Item = T> + 'a> {
    if backwards {
        Box::new(it.rev())
    } else {
        Box::new(it)
    }
}

/// Every (second component, value) of keys `(first, *)` in a table of strings.
pub(super) fn pairs_under(
    table: &impl ReadableTable<Pair, Str>,
    first: &str,
) -> Result<Vec<(String, String)>, MetaError> {
    Ok(pairs_page(table, first, None, usize::MAX, |_| true)?.0)
}

/// Up to `limit` (second component, value) of keys `(first, *)` after `after` that `keep`
/// accepts, and whether more follow.
pub(super) fn pairs_page(
    table: &impl ReadableTable<Pair, Str>,
    first: &str,
    after: Option<&str>,
    limit: usize,
    keep: impl Fn(&str) -> bool,
) -> Result<(Vec<(String, String)>, bool), MetaError> {
    let start = match after {
        Some(after) => Bound::Excluded((first, after)),
        None => Bound::Included((first, "")),
    };
    page(
        table.range::<(&str, &str)>((start, Bound::Unbounded))?,
        limit,
        |(k, _)| {
            let (f, second) = k.value();
            if f == first {
                Scan::keep_if(keep(second))
            } else {
                Scan::Stop
            }
        },
        |(k, v)| Ok((k.value().1.to_owned(), v.value().to_owned())),
    )
}

/// Up to `limit` second components of keys `(first, *)` after `after`, and whether more follow.
pub(super) fn page_of_pairs<V: redb::Value + 'static>(
    table: &impl ReadableTable<Pair, V>,
    first: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<(Vec<String>, bool), MetaError> {
    let start = match after {
        Some(after) => Bound::Excluded((first, after)),
        None => Bound::Included((first, "")),
    };
    // Each key is decoded once: a listing of many tags is this loop.
    let keys = table
        .range::<(&str, &str)>((start, Bound::Unbounded))?
        .map(|entry| {
            entry.map(|(k, _)| {
                let (f, second) = k.value();
                (f == first).then(|| second.to_owned())
            })
        });
    page(
        keys,
        limit,
        |second| {
            if second.is_some() {
                Scan::Keep
            } else {
                Scan::Stop
            }
        },
        |second| Ok(second.unwrap_or_default()),
    )
}
