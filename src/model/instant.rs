//! Points in time as people write them: RFC 3339 with any offset
//! (`2026-12-01T08:48:30+01:00`, what `date --iso-8601=seconds` prints), `Z`, a date alone
//! (its start, UTC), and where a person types at a prompt, relative times (`2 hours ago`,
//! `90m ago`, `3 days ago`). Pure: "now" is the caller's.

use std::str::FromStr;

use jiff::{SignedDuration, Span, SpanRelativeTo, Timestamp};

/// Milliseconds since the epoch of `text`; relative forms only with `relative`.
pub fn parse(text: &str, now_ms: u64, relative: bool) -> Result<u64, String> {
    let text = text.trim();
    let invalid = || {
        format!(
            "{text:?} is not a time: use RFC 3339 with an offset (2026-12-01T08:48:30+01:00 or …Z){}",
            if relative {
                ", a date (2026-12-01), or a relative time (2 hours ago)"
            } else {
                " or a date (2026-12-01)"
            }
        )
    };
    let ts = if let Ok(ts) = Timestamp::from_str(text) {
        ts
    } else if let Ok(date) = jiff::civil::Date::from_str(text) {
        Timestamp::from_str(&format!("{date}T00:00:00Z")).map_err(|_| invalid())?
    } else if relative {
        let span = Span::from_str(text).map_err(|_| invalid())?;
        let back: SignedDuration = span
            .to_duration(SpanRelativeTo::days_are_24_hours())
            .map_err(|_| invalid())?;
        let now = Timestamp::from_millisecond(i64::try_from(now_ms).map_err(|_| invalid())?)
            .map_err(|_| invalid())?;
        // "2 hours ago" parses as a negative span; "2 hours" is taken to mean the same.
        let back = if back.is_negative() { back } else { -back };
        now.checked_add(back).map_err(|_| invalid())?
    } else {
        return Err(invalid());
    };
    u64::try_from(ts.as_millisecond()).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOON_UTC: u64 = 1_796_126_400_000; // 2026-12-01T12:00:00Z

    #[test]
    fn offsets_dates_and_relative_times_all_name_the_same_instant() {
        assert_eq!(parse("2026-12-01T12:00:00Z", 0, false), Ok(NOON_UTC));
        assert_eq!(parse("2026-12-01T13:00:00+01:00", 0, false), Ok(NOON_UTC));
        assert_eq!(parse("2026-12-01T07:00:00-05:00", 0, false), Ok(NOON_UTC));
        assert_eq!(parse("2026-12-01", 0, false), Ok(NOON_UTC - 12 * 3_600_000));
        assert_eq!(
            parse("2 hours ago", NOON_UTC, true),
            Ok(NOON_UTC - 2 * 3_600_000)
        );
        assert_eq!(parse("90m ago", NOON_UTC, true), Ok(NOON_UTC - 90 * 60_000));
        assert_eq!(
            parse("3 days ago", NOON_UTC, true),
            Ok(NOON_UTC - 3 * 86_400_000)
        );
        assert!(
            parse("2 hours ago", NOON_UTC, false).is_err(),
            "relative where not asked for"
        );
        let e = parse("yesterday-ish", NOON_UTC, true).unwrap_err();
        assert!(e.contains("RFC 3339"), "{e}");
    }
}
