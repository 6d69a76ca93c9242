//! Time as the rules speak it: RFC 3339 for people and payloads, calendar months for legal
//! deadlines. Pure: every instant is passed in (milliseconds since the Unix epoch).

use std::time::Duration;

use crate::incident::Ms;

const DAY: i64 = 86_400_000;

/// `ms` as RFC 3339 UTC, to the second.
pub fn rfc3339(ms: Ms) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

/// One calendar month later (the 31st becomes the month's last day).
pub fn add_month(ms: Ms) -> Ms {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) else {
        return ms + 30 * DAY;
    };
    let (year, month) = if t.month() == time::Month::December {
        (t.year() + 1, time::Month::January)
    } else {
        (t.year(), t.month().next())
    };
    let day = t.day().min(month.length(year));
    time::Date::from_calendar_date(year, month, day)
        .map(|d| {
            let shifted = t.replace_date(d);
            i64::try_from(shifted.unix_timestamp_nanos() / 1_000_000).unwrap_or(ms)
        })
        .unwrap_or(ms + 30 * DAY)
}
