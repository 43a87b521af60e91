//! The one clock. Only the request loop, the mail thread and the sweeper read
//! it; everything below them receives `now` (Unix seconds) as a parameter, so
//! tests can move time forward instead of sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds in a day.
pub const DAY: u64 = 86_400;

/// System time plus an adjustable offset shared by every clone.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_secs: Arc<AtomicI64>,
}

impl Clock {
    /// The real time.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// Seconds since the Unix epoch, as this clock sees them.
    pub fn now(&self) -> u64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        (real + self.offset_secs.load(Ordering::Relaxed)).max(0) as u64
    }

    /// Moves this clock (and every clone of it) forward: tests use it to make
    /// codes expire without waiting.
    pub fn advance(&self, secs: i64) {
        self.offset_secs.fetch_add(secs, Ordering::Relaxed);
    }
}

/// Wall-clock time of day `HH:MM:SS` at `now` in a zone `offset_secs` east of UTC.
pub fn time_of_day(now: u64, offset_secs: i32) -> String {
    let local = (now as i64 + offset_secs as i64).rem_euclid(86_400);
    format!(
        "{:02}:{:02}:{:02}",
        local / 3600,
        local / 60 % 60,
        local % 60
    )
}

/// The calendar date (year, month, day) of a count of days since 1970-01-01.
fn civil(days: i64) -> (i64, i64, i64) {
    // The proleptic Gregorian calendar's days-to-civil conversion, by eras
    // of 400 years.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Calendar date and time `YYYY-MM-DD HH:MM:SS` at `now`, for logs and operator pages.
pub fn date_time(now: u64, offset_secs: i32) -> String {
    let local = now as i64 + offset_secs as i64;
    let (days, secs) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    let (year, month, day) = civil(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Days since 1970-01-01 of a calendar date (the inverse of `civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The moment a person means by `YYYY-MM-DD` (its first second), or
/// `YYYY-MM-DD HH:MM` / `HH:MM:SS`, in the zone `offset_secs` east of UTC.
/// `end`: a bare date means its last second (a range "until" a day).
pub fn parse_date_time(text: &str, offset_secs: i32, end: bool) -> Option<u64> {
    let text = text.trim();
    let (date, time) = text.split_once([' ', 'T']).unwrap_or((text, ""));
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    if !(1970..=9999).contains(&year) || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let secs = if time.is_empty() {
        if end {
            86_399
        } else {
            0
        }
    } else {
        let mut t = time.splitn(3, ':').map(|p| p.parse::<i64>().ok());
        let (h, m) = (t.next()??, t.next()??);
        let s = t.next().map_or(Some(0), |s| s)?;
        if !(0..24).contains(&h) || !(0..60).contains(&m) || !(0..60).contains(&s) {
            return None;
        }
        h * 3600 + m * 60 + s
    };
    let days = days_from_civil(year, month, day);
    // 2026-02-31 is no day: it would read as March 3rd.
    if civil(days) != (year, month, day) {
        return None;
    }
    let local = days * 86_400 + secs;
    u64::try_from(local - offset_secs as i64).ok()
}

/// The time of a log line, now, RFC 3339 in UTC with milliseconds:
/// `2026-12-01T16:16:28.123Z`. Real time, as `http_date`'s.
pub fn log_time() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs() as i64;
    let (days, time) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        time / 3600,
        time % 3600 / 60,
        time % 60,
        since.subsec_millis()
    )
}

/// The HTTP `Date` of a moment (RFC 9110 §5.6.7): `Tue, 01 Dec 2026 16:16:28 GMT`.
/// The HTTP layer stamps answers with the real time, not the server's
/// clock that tests move.
pub fn http_date(at: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, time) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil(days);
    format!(
        "{}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        time / 3600,
        time / 60 % 60,
        time % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_jst_time_and_date() {
        // 2026-11-23 03:04:05 UTC is 12:04:05 in Japan.
        let t = 1_795_392_000 + 3 * 3600 + 4 * 60 + 5;
        assert_eq!(date_time(t, 0), "2026-11-23 03:04:05");
        assert_eq!(time_of_day(t, 9 * 3600), "12:04:05");
        assert_eq!(date_time(t, 9 * 3600), "2026-11-23 12:04:05");
        let at = UNIX_EPOCH + std::time::Duration::from_secs(t);
        assert_eq!(http_date(at), "Mon, 23 Nov 2026 03:04:05 GMT");
        assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
    }

    #[test]
    fn dates_typed_by_a_person_are_read_in_the_zone() {
        let jst = 9 * 3600;
        let t = 1_795_392_000 + 3 * 3600 + 4 * 60 + 5;
        assert_eq!(parse_date_time("2026-11-23 12:04:05", jst, false), Some(t));
        assert_eq!(parse_date_time("2026-11-23 12:04", jst, false), Some(t - 5));
        let midnight = parse_date_time("2026-11-23", jst, false).unwrap();
        assert_eq!(date_time(midnight, jst), "2026-11-23 00:00:00");
        let last = parse_date_time("2026-11-23", jst, true).unwrap();
        assert_eq!(date_time(last, jst), "2026-11-23 23:59:59");
        assert_eq!(
            parse_date_time("2024-02-29", 0, false).map(|t| date_time(t, 0)),
            Some("2024-02-29 00:00:00".into())
        );
        for bad in [
            "",
            "2026-13-01",
            "2026-02-31",
            "2026-11",
            "yesterday",
            "2026-11-23 25:00",
        ] {
            assert_eq!(parse_date_time(bad, jst, false), None, "{bad}");
        }
    }

    #[test]
    fn advancing_moves_every_clone() {
        let clock = Clock::system();
        let other = clock.clone();
        let before = other.now();
        clock.advance(3600);
        assert!(other.now() >= before + 3600);
    }
}
