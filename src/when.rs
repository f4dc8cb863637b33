//! Partial dates: [`When`] and its [`Precision`].
//!
//! A `When` is a date that is only as precise as its source: a year
//! (`2019`), a month (`2024-06`), a day (`2025-01-21`) or an instant to the
//! second (`2025-01-21T15:30:00Z`, normalised to UTC). Every `When` covers a
//! half-open UTC interval `[start, end)`; the rules that turn those intervals
//! into "certain", "uncertain" and "not yet" live in [`When::certainty_at`].
//!
//! This module owns parsing and printing. It never reads the clock.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};

/// How much of a date is known.
///
/// Ordered from coarse to fine, which is also how two dates that start at the
/// same moment are ordered (`2019` before `2019-01` before `2019-01-01`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Precision {
    Year,
    Month,
    Day,
    Instant,
}

impl Precision {
    /// The lower-case English name: `year`, `month`, `day`, `instant`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Year => "year",
            Precision::Month => "month",
            Precision::Day => "day",
            Precision::Instant => "instant",
        }
    }

    /// A stable one-byte code, used by the store.
    pub fn code(self) -> u8 {
        match self {
            Precision::Year => 0,
            Precision::Month => 1,
            Precision::Day => 2,
            Precision::Instant => 3,
        }
    }

    /// The inverse of [`Precision::code`].
    pub fn from_code(code: u8) -> Option<Precision> {
        Some(match code {
            0 => Precision::Year,
            1 => Precision::Month,
            2 => Precision::Day,
            3 => Precision::Instant,
            _ => return None,
        })
    }
}

/// A date with a precision, covering the UTC interval `[start, end)`.
///
/// `When` values are ordered by the start of their interval, then from
/// coarse to fine precision, so `2019` < `2019-07` < `2019-07-22` <
/// `2019-07-22T00:00:00Z` < `2019-07-23`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct When {
    /// Start of the interval in seconds since the Unix epoch (UTC).
    start: i64,
    precision: Precision,
}

/// Where an event stands relative to the end of a query interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Certainty {
    /// The event's whole interval lies before the query end.
    Certain,
    /// The event starts before the query end but may end after it: the event
    /// is coarser than the question.
    Uncertain,
    /// The event starts at or after the query end.
    NotYet,
}

/// A date that could not be parsed, with the input quoted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid date \"{input}\": {reason} (expected YYYY, YYYY-MM, YYYY-MM-DD or an RFC 3339 timestamp such as 2025-01-21T15:30:00Z)"
)]
pub struct WhenError {
    /// The text as given.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

/// The years a `When` can hold: four digits, as written.
pub const MIN_YEAR: i32 = 0;
/// See [`MIN_YEAR`].
pub const MAX_YEAR: i32 = 9999;
/// The first second of [`MIN_YEAR`], in seconds since the epoch (checked
/// against the calendar in a test).
const FIRST_START: i64 = -62_167_219_200;
/// The first second after [`MAX_YEAR`]; see [`FIRST_START`].
const AFTER_LAST_START: i64 = 253_402_300_800;

/// The longest interval a date covers, in seconds: a leap year.
pub const LONGEST_INTERVAL: i64 = 366 * 86_400;

impl When {
    /// Parses `YYYY`, `YYYY-MM`, `YYYY-MM-DD` or an RFC 3339 timestamp
    /// (whole seconds, `Z` or an offset; normalised to UTC).
    pub fn parse(input: &str) -> Result<When, WhenError> {
        let fail = |reason: &str| WhenError {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        if input.is_empty() {
            return Err(fail("the date is empty"));
        }
        if input.trim() != input {
            return Err(fail("remove the spaces around the date"));
        }
        if input.contains(['T', 't', ' ', ':']) {
            return Self::parse_instant(input).map_err(|reason| fail(&reason));
        }
        let parts: Vec<&str> = input.split('-').collect();
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(parts[0], 4) {
            return Err(fail("the year must be four digits"));
        }
        if parts.len() > 3 {
            return Err(fail("too many parts"));
        }
        if parts[1..].iter().any(|p| !digits(p, 2)) {
            return Err(fail("month and day take two digits each"));
        }
        let number = |s: &str| s.parse::<u32>().expect("checked to be digits");
        let year = number(parts[0]) as i32;
        let month = parts.get(1).map(|m| number(m));
        let day = parts.get(2).map(|d| number(d));
        if let Some(m) = month
            && !(1..=12).contains(&m)
        {
            return Err(fail("the month must be 01 to 12"));
        }
        let date = NaiveDate::from_ymd_opt(year, month.unwrap_or(1), day.unwrap_or(1))
            .ok_or_else(|| fail("no such day in that month"))?;
        let precision = match (month, day) {
            (None, _) => Precision::Year,
            (Some(_), None) => Precision::Month,
            (Some(_), Some(_)) => Precision::Day,
        };
        Ok(When {
            start: midnight(date),
            precision,
        })
    }

    fn parse_instant(input: &str) -> Result<When, String> {
        let after_t = input
            .split_once(['T', 't', ' '])
            .map_or("", |(_, time)| time);
        if !after_t.is_empty() && !after_t.contains(['Z', 'z', '+', '-']) {
            return Err("a timestamp needs Z or an offset such as +01:00".to_string());
        }
        let t = DateTime::parse_from_rfc3339(input)
            .map_err(|e| format!("not a valid timestamp ({e})"))?;
        if t.nanosecond() >= 1_000_000_000 {
            return Err("leap seconds (:60) are not supported".to_string());
        }
        if t.nanosecond() != 0 {
            return Err("instants are recorded to the whole second".to_string());
        }
        let utc = t.with_timezone(&Utc);
        if !(MIN_YEAR..=MAX_YEAR).contains(&utc.year()) {
            return Err(format!(
                "in UTC the year must be {MIN_YEAR:04} to {MAX_YEAR}"
            ));
        }
        Ok(When::instant(utc))
    }

    /// The instant `t`, truncated to the whole second.
    ///
    /// Years outside [`MIN_YEAR`]..=[`MAX_YEAR`] cannot be printed as four
    /// digits; callers that take arbitrary times check the year first.
    pub fn instant(t: DateTime<Utc>) -> When {
        When {
            start: t.timestamp(),
            precision: Precision::Instant,
        }
    }

    /// The day `date`.
    pub fn day(date: NaiveDate) -> When {
        When {
            start: midnight(date),
            precision: Precision::Day,
        }
    }

    /// Rebuilds a `When` from its stored parts; `None` when `start` is not
    /// the start of an interval of that precision or is out of range.
    pub fn from_parts(start: i64, precision: Precision) -> Option<When> {
        if !(FIRST_START..AFTER_LAST_START).contains(&start) {
            return None;
        }
        let midnight = start.rem_euclid(86_400) == 0;
        // Days and instants, most stored dates, need no calendar: replay
        // and checkpoints rebuild one for every fact they read.
        let date = || DateTime::from_timestamp(start, 0).map(|t| t.date_naive());
        let aligned = match precision {
            Precision::Instant => true,
            Precision::Day => midnight,
            Precision::Month => midnight && date().is_some_and(|d| d.day() == 1),
            Precision::Year => midnight && date().is_some_and(|d| d.ordinal() == 1),
        };
        aligned.then_some(When { start, precision })
    }

    /// How precise this date is.
    pub fn precision(self) -> Precision {
        self.precision
    }

    /// Start of the interval, in seconds since the Unix epoch (inclusive).
    pub fn start(self) -> i64 {
        self.start
    }

    /// End of the interval, in seconds since the Unix epoch (exclusive).
    pub fn end(self) -> i64 {
        // Replay asks this of every event: only months and years need the
        // calendar.
        let start_date = || self.start_utc().date_naive();
        match self.precision {
            Precision::Instant => self.start + 1,
            Precision::Day => self.start + 86_400,
            Precision::Month => {
                let date = start_date();
                let (y, m) = if date.month() == 12 {
                    (date.year() + 1, 1)
                } else {
                    (date.year(), date.month() + 1)
                };
                midnight(NaiveDate::from_ymd_opt(y, m, 1).expect("first of a month exists"))
            }
            Precision::Year => midnight(
                NaiveDate::from_ymd_opt(start_date().year() + 1, 1, 1)
                    .expect("first of a year exists"),
            ),
        }
    }

    /// Start of the interval as a UTC timestamp.
    pub fn start_utc(self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.start, 0).expect("a When is always in range")
    }

    /// The date as a reader would write it, only as precise as it is known:
    /// `2019`, `June 2024`, `21 January 2025`, `21 January 2025, 15:30:00 UTC`.
    pub fn human(self) -> String {
        let t = self.start_utc();
        match self.precision {
            Precision::Year => format!("{}", t.year()),
            Precision::Month => t.format("%B %Y").to_string(),
            Precision::Day => t.format("%-d %B %Y").to_string(),
            Precision::Instant => t.format("%-d %B %Y, %H:%M:%S UTC").to_string(),
        }
    }

    /// The calendar year the interval starts in.
    pub fn year(self) -> i32 {
        self.start_utc().year()
    }

    /// The month (1–12), when the precision is month or finer.
    pub fn month(self) -> Option<u32> {
        (self.precision >= Precision::Month).then(|| self.start_utc().month())
    }

    /// The day of the month (1–31), when the precision is day or finer.
    pub fn day_of_month(self) -> Option<u32> {
        (self.precision >= Precision::Day).then(|| self.start_utc().day())
    }

    /// Classifies an event dated `self` against a query whose interval ends
    /// (exclusively) at `query_end`: certain when `end <= query_end`, not yet
    /// when `start >= query_end`, uncertain in between.
    pub fn certainty_at(self, query_end: i64) -> Certainty {
        if self.start >= query_end {
            Certainty::NotYet
        } else if self.end() <= query_end {
            Certainty::Certain
        } else {
            Certainty::Uncertain
        }
    }
}

fn midnight(date: NaiveDate) -> i64 {
    date.and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
        .timestamp()
}

impl Ord for When {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.start, self.precision).cmp(&(other.start, other.precision))
    }
}

impl PartialOrd for When {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for When {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.start_utc();
        match self.precision {
            Precision::Year => write!(f, "{:04}", t.year()),
            Precision::Month => write!(f, "{:04}-{:02}", t.year(), t.month()),
            Precision::Day => write!(f, "{:04}-{:02}-{:02}", t.year(), t.month(), t.day()),
            Precision::Instant => write!(
                f,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                t.year(),
                t.month(),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            ),
        }
    }
}

impl FromStr for When {
    type Err = WhenError;

    fn from_str(s: &str) -> Result<When, WhenError> {
        When::parse(s)
    }
}

impl serde::Serialize for When {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for When {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<When, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = When;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a date string such as \"2019\", \"2024-06\" or \"2025-01-21\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<When, E> {
                When::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> When {
        When::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    fn utc(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp()
    }

    #[test]
    fn no_date_is_longer_than_a_leap_year() {
        assert_eq!(w("2020").end() - w("2020").start(), LONGEST_INTERVAL);
        for text in ["2019", "2000", "1900", "2024-02", "2024-12", "2025-01-21"] {
            let when = w(text);
            assert!(when.end() - when.start() <= LONGEST_INTERVAL, "{text}");
        }
    }

    #[test]
    fn every_precision_parses_and_prints_back() {
        for (text, precision) in [
            ("2019", Precision::Year),
            ("0001", Precision::Year),
            ("9999", Precision::Year),
            ("2024-06", Precision::Month),
            ("2024-12", Precision::Month),
            ("2025-01-21", Precision::Day),
            ("2024-02-29", Precision::Day),
            ("2025-01-21T15:30:00Z", Precision::Instant),
        ] {
            let when = w(text);
            assert_eq!(when.precision(), precision, "{text}");
            assert_eq!(when.to_string(), text);
            assert_eq!(w(&when.to_string()), when);
        }
    }

    #[test]
    fn instants_are_normalised_to_utc() {
        let when = w("2025-01-21T16:30:00+01:00");
        assert_eq!(when.to_string(), "2025-01-21T15:30:00Z");
        assert_eq!(when, w("2025-01-21T15:30:00Z"));
        assert_eq!(w("2025-01-21T15:30:00.000Z"), w("2025-01-21T15:30:00Z"));
    }

    #[test]
    fn intervals_are_half_open_and_match_the_design_table() {
        let cases = [
            ("2019", "2019-01-01T00:00:00Z", "2020-01-01T00:00:00Z"),
            ("2024-06", "2024-06-01T00:00:00Z", "2024-07-01T00:00:00Z"),
            ("2024-12", "2024-12-01T00:00:00Z", "2025-01-01T00:00:00Z"),
            ("2025-01-21", "2025-01-21T00:00:00Z", "2025-01-22T00:00:00Z"),
            (
                "2025-01-21T15:30:00Z",
                "2025-01-21T15:30:00Z",
                "2025-01-21T15:30:01Z",
            ),
            ("9999", "9999-01-01T00:00:00Z", "10000-01-01T00:00:00Z"),
        ];
        for (text, start, end) in cases {
            let when = w(text);
            assert_eq!(when.start(), utc(start), "start of {text}");
            if text == "9999" {
                assert_eq!(when.end() - when.start(), 365 * 86_400);
            } else {
                assert_eq!(when.end(), utc(end), "end of {text}");
            }
        }
    }

    #[test]
    fn leap_years_follow_the_gregorian_rules() {
        assert!(When::parse("2024-02-29").is_ok());
        assert!(When::parse("2000-02-29").is_ok());
        assert!(When::parse("1900-02-29").is_err());
        assert!(When::parse("2023-02-29").is_err());
        assert_eq!(w("2024-02").end() - w("2024-02").start(), 29 * 86_400);
        assert_eq!(w("2023-02").end() - w("2023-02").start(), 28 * 86_400);
        assert_eq!(w("2024").end() - w("2024").start(), 366 * 86_400);
        assert_eq!(w("2023").end() - w("2023").start(), 365 * 86_400);
    }

    #[test]
    fn mixed_precisions_order_by_start_then_coarse_first() {
        let mut dates: Vec<When> = [
            "2019-07-23",
            "2019-07-22T00:00:00Z",
            "2019-07-22",
            "2019-07",
            "2018-12-31T23:59:59Z",
            "2019",
            "2019-07-22T00:00:01Z",
            "2020",
        ]
        .iter()
        .map(|s| w(s))
        .collect();
        dates.sort();
        let printed: Vec<String> = dates.iter().map(When::to_string).collect();
        assert_eq!(
            printed,
            [
                "2018-12-31T23:59:59Z",
                "2019",
                "2019-07",
                "2019-07-22",
                "2019-07-22T00:00:00Z",
                "2019-07-22T00:00:01Z",
                "2019-07-23",
                "2020",
            ]
        );
    }

    #[test]
    fn certainty_follows_the_interval_rules() {
        let year = w("2019");
        assert_eq!(year.certainty_at(w("2018").end()), Certainty::NotYet);
        assert_eq!(
            year.certainty_at(w("2019-06-01").end()),
            Certainty::Uncertain
        );
        assert_eq!(year.certainty_at(w("2019-12-31").end()), Certainty::Certain);
        assert_eq!(year.certainty_at(w("2019").end()), Certainty::Certain);
        assert_eq!(
            year.certainty_at(w("2019-01-01").end()),
            Certainty::Uncertain
        );
        let day = w("2025-01-21");
        assert_eq!(day.certainty_at(w("2025-01-20").end()), Certainty::NotYet);
        assert_eq!(day.certainty_at(w("2025-01-21").end()), Certainty::Certain);
        assert_eq!(
            day.certainty_at(w("2025-01-21T12:00:00Z").end()),
            Certainty::Uncertain
        );
    }

    #[test]
    fn impossible_dates_are_rejected_with_the_input_quoted() {
        let cases = [
            ("", "empty"),
            ("2019-13", "month must be 01 to 12"),
            ("2019-00", "month must be 01 to 12"),
            ("2023-02-29", "no such day"),
            ("2019-04-31", "no such day"),
            ("2019-01-00", "no such day"),
            ("2019-1-5", "two digits"),
            ("2019-01-5", "two digits"),
            ("19", "four digits"),
            ("20190", "four digits"),
            ("-2019", "four digits"),
            ("2019-01-01-01", "too many parts"),
            ("2019/01/01", "four digits"),
            ("abcd", "four digits"),
            ("2019-06-01T25:00:00Z", "not a valid timestamp"),
            ("2019-06-01T12:00:00", "needs Z or an offset"),
            ("2016-12-31T23:59:60Z", "leap seconds"),
            (" 2019", "spaces around"),
            ("2019 ", "spaces around"),
            ("2019-06-01T12:00:00.5Z", "whole second"),
            ("0000-01-01T00:30:00+01:00", "year must be"),
            ("+10000-01-01", "four digits"),
            ("10000", "four digits"),
        ];
        for (input, reason) in cases {
            let err = When::parse(input).expect_err(input);
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("invalid date \"{input}\"")),
                "{message}"
            );
            assert!(message.contains(reason), "{input}: {message}");
        }
    }

    #[test]
    fn parts_round_trip_and_reject_misaligned_starts() {
        for text in ["2019", "2024-06", "2025-01-21", "2025-01-21T15:30:00Z"] {
            let when = w(text);
            let code = when.precision().code();
            let back = When::from_parts(when.start(), Precision::from_code(code).unwrap());
            assert_eq!(back, Some(when));
        }
        assert_eq!(
            When::from_parts(w("2019-06").start(), Precision::Year),
            None
        );
        assert_eq!(
            When::from_parts(w("2019-06-02").start(), Precision::Month),
            None
        );
        assert_eq!(
            When::from_parts(w("2019-06-02").start() + 1, Precision::Day),
            None
        );
        assert_eq!(When::from_parts(i64::MAX, Precision::Instant), None);
        assert_eq!(Precision::from_code(4), None);
    }

    /// What `from_parts` answers, by the calendar alone.
    fn from_parts_by_the_calendar(start: i64, precision: Precision) -> Option<When> {
        let t = DateTime::from_timestamp(start, 0)?;
        let midnight = t.num_seconds_from_midnight() == 0;
        let aligned = match precision {
            Precision::Instant => true,
            Precision::Day => midnight,
            Precision::Month => midnight && t.day() == 1,
            Precision::Year => midnight && t.ordinal() == 1,
        };
        ((MIN_YEAR..=MAX_YEAR).contains(&t.year()) && aligned).then_some(When { start, precision })
    }

    use proptest::prelude::Strategy as _;

    proptest::proptest! {
        /// Rebuilding agrees with the calendar, and so do the ends, for
        /// any start (near the years' bounds, on midnights and firsts of
        /// months too) at every precision.
        #[test]
        fn parts_are_rebuilt_as_the_calendar_says(
            start in proptest::prop_oneof![
                -70_000_000_000i64..260_000_000_000,
                (-62_200_000i64..-62_100_000).prop_map(|d| d * 1_000),
                (253_300_000i64..253_500_000).prop_map(|d| d * 1_000),
                (-800_000i64..2_940_000).prop_map(|d| d * 86_400),
            ],
            code in 0u8..4,
        ) {
            let precision = Precision::from_code(code).unwrap();
            let rebuilt = When::from_parts(start, precision);
            proptest::prop_assert_eq!(rebuilt, from_parts_by_the_calendar(start, precision));
            if let Some(when) = rebuilt {
                let by_calendar = match precision {
                    Precision::Instant => start + 1,
                    Precision::Day => start + 86_400,
                    Precision::Month => {
                        let date = when.start_utc().date_naive();
                        midnight(date.checked_add_months(chrono::Months::new(1)).unwrap())
                    }
                    Precision::Year => {
                        let date = when.start_utc().date_naive();
                        midnight(date.checked_add_months(chrono::Months::new(12)).unwrap())
                    }
                };
                proptest::prop_assert_eq!(when.end(), by_calendar);
            }
        }
    }

    #[test]
    fn days_and_instants_are_rebuilt_within_the_years_a_date_may_have() {
        let first = utc("0000-01-01T00:00:00Z");
        let after = utc("9999-12-31T23:59:59Z") + 1;
        assert_eq!((FIRST_START, AFTER_LAST_START), (first, after));
        for precision in [Precision::Instant, Precision::Day] {
            for start in [first, after - 86_400] {
                let when = When::from_parts(start, precision).expect("in range");
                assert_eq!((when.start(), when.precision()), (start, precision));
            }
            assert_eq!(When::from_parts(first - 86_400, precision), None);
            assert_eq!(When::from_parts(after, precision), None);
        }
        assert_eq!(
            When::from_parts(after - 1, Precision::Instant).map(When::year),
            Some(9999)
        );
        assert_eq!(When::from_parts(first - 1, Precision::Instant), None);
        assert_eq!(When::from_parts(-86_400 + 1, Precision::Day), None);
        assert_eq!(
            When::from_parts(-86_400, Precision::Day).map(|w| w.to_string()),
            Some("1969-12-31".to_string())
        );
    }

    #[test]
    fn components_follow_the_precision() {
        assert_eq!((w("2019").year(), w("2019").month()), (2019, None));
        assert_eq!(w("2024-06").month(), Some(6));
        assert_eq!(w("2024-06").day_of_month(), None);
        assert_eq!(w("2025-01-21").day_of_month(), Some(21));
    }

    #[test]
    fn human_dates_say_only_what_is_known() {
        let human = |s: &str| When::parse(s).unwrap().human();
        assert_eq!(human("2019"), "2019");
        assert_eq!(human("2024-06"), "June 2024");
        assert_eq!(human("2025-01-01"), "1 January 2025");
        assert_eq!(
            human("2025-01-21T15:30:00Z"),
            "21 January 2025, 15:30:00 UTC"
        );
    }
}
