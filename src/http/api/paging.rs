//! Paged lists of the management API, as the Distribution API pages tags: `?n=` (how many;
//! 100 unless asked, at most 1000) and `?last=` (continue after this item), with a `Link:
//! <…>; rel="next"` header while more follow.

use actix_web::HttpRequest;
use serde::Deserialize;

use crate::domain::registry::list_page_size;

/// `?n=&last=` of a paged list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct PageQuery {
    /// How many items (default 100, at most 1000).
    pub n: Option<usize>,
    /// Continue after this item (the last one of the previous page).
    pub last: Option<String>,
}

/// The address of the next page: this request with `last` set (and any other parameter
/// kept), as a `Link` header value; `title` names the list when a response has several.
#[must_use]
pub fn next_link(req: &HttpRequest, last: &str, title: Option<&str>) -> String {
    let mut pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    pairs.retain(|(k, _)| k != "last" && (title.is_none() || k != "list"));
    if let Some(list) = title {
        pairs.push(("list".into(), list.into()));
    }
    pairs.push(("last".into(), last.into()));
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    let title = title
        .map(|t| format!("; title=\"{t}\""))
        .unwrap_or_default();
    format!("<{}?{query}>; rel=\"next\"{title}", req.path())
}

/// The page of `items` (ordered by `key`) after `q.last`, and the key to continue
/// after when more follow.
pub fn page_of<T>(
    mut items: Vec<T>,
    key: impl Fn(&T) -> &str,
    q: &PageQuery,
) -> (Vec<T>, Option<String>) {
    let n = list_page_size(q.n);
    items.sort_by(|a, b| key(a).cmp(key(b)));
    let mut rest: Vec<T> = items
        .into_iter()
        .filter(|item| q.last.as_deref().is_none_or(|last| key(item) > last))
        .collect();
    let more = rest.len() > n;
    rest.truncate(n);
    let next = if more {
        rest.last().map(|item| key(item).to_owned())
    } else {
        None
    };
    (rest, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_continue_after_the_last_item_and_say_where() {
        let items: Vec<String> = (0..7).map(|i| format!("k{i}")).collect();
        let q = PageQuery {
            n: Some(3),
            last: None,
        };
        let (first, next) = page_of(items.clone(), String::as_str, &q);
        assert_eq!(first, ["k0", "k1", "k2"]);
        assert_eq!(next.as_deref(), Some("k2"));
        let q = PageQuery {
            n: Some(3),
            last: Some("k5".into()),
        };
        let (last, next) = page_of(items, String::as_str, &q);
        assert_eq!(last, ["k6"]);
        assert_eq!(next, None);
        let req = actix_web::test::TestRequest::get()
            .uri("/api/v1/users?n=3&last=k0")
            .to_http_request();
        assert_eq!(
            next_link(&req, "k2", None),
            "</api/v1/users?n=3&last=k2>; rel=\"next\""
        );
        assert_eq!(
            next_link(&req, "1.0.0", Some("versions")),
            "</api/v1/users?n=3&list=versions&last=1.0.0>; rel=\"next\"; title=\"versions\""
        );
    }
}
