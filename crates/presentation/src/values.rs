//! Plain values that arrive as JSON strings and are parsed here, with the message a
//! client gets when its value is refused.

use chrono::NaiveDate;

/// A day as `YYYY-MM-DD`, exactly.
pub(crate) fn parse_date(raw: &str) -> Result<NaiveDate, &'static str> {
    let shaped = raw.len() == 10
        && raw.bytes().enumerate().all(|(at, b)| match at {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    shaped
        .then(|| NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok())
        .flatten()
        .ok_or("must be a date as YYYY-MM-DD")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_is_exactly_yyyy_mm_dd() {
        assert_eq!(
            parse_date("2025-06-30"),
            NaiveDate::from_ymd_opt(2025, 6, 30).ok_or("")
        );
        for raw in [
            "2025-6-30",
            "2025-02-30",
            "30-06-2025",
            "+2025-06-30",
            "2025-06-30T00:00",
        ] {
            assert!(parse_date(raw).is_err(), "{raw}");
        }
    }
}
