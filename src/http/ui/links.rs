//! Links the pages build: escaped query values, a return address with a notice, and a
//! `next` that stays inside the UI.

pub(super) fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `back` with `done=CODE` added, for the one-line confirmation the page then shows.
pub(super) fn with_done(back: &str, code: &str) -> String {
    let sep = if back.contains('?') { '&' } else { '?' };
    format!("{back}{sep}done={code}")
}

/// Only a local path may be a login's `next`: never another site, and never anything that
/// cannot go into a `Location` header as it is (control characters, spaces, non-ASCII).
/// Anything else falls back to the dashboard.
pub(super) fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with("/ui")
                && !n.starts_with("//")
                && n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') =>
        {
            n.to_owned()
        }
        _ => "/ui/".to_owned(),
    }
}
