//! `semdock search QUERY`: repositories, tags, digests and annotations across the feeds the
//! caller may pull.

use super::target::{Request, Target};
use super::{Output, print_table};
use crate::http::api::dto::SearchHit;

pub(super) fn search(
    target: &Target,
    query: &str,
    limit: usize,
    output: Output,
) -> anyhow::Result<()> {
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("q", query)
        .append_pair("n", &limit.to_string())
        .finish();
    let hits: Vec<SearchHit> = target.run(Request::get(format!("/search?{q}")), |a| {
        Ok(a.search(query, limit)?
            .into_iter()
            .map(Into::into)
            .collect())
    })?;
    if let Output::Json = output {
        println!("{}", serde_json::to_string_pretty(&hits)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = hits
        .iter()
        .map(|h| {
            vec![
                h.kind.clone(),
                h.repository.clone(),
                h.tag.clone().unwrap_or_default(),
                h.digest.clone().unwrap_or_default(),
                h.matched.clone(),
            ]
        })
        .collect();
    print_table(&["KIND", "REPOSITORY", "TAG", "DIGEST", "MATCHED"], &rows);
    Ok(())
}
