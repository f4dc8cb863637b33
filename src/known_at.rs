//! Known-at (transaction time): "what did the log say at that moment?"
//!
//! `--known-at '#N'` keeps the records with seq at most N; `--known-at T`
//! keeps those recorded by T, where T is a date (the end of its interval,
//! as for every query date) or an RFC 3339 timestamp: one with a fraction
//! of a second is exact to the microsecond, inclusive; one without is a
//! date of its own and covers its whole second. Either way the answer is a seq: `recorded_at` never goes
//! backwards, so the records known at a time are a prefix of the log.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::when::When;

/// A known-at bound, as the user wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownAt {
    text: String,
    bound: Bound,
}

/// What a [`KnownAt`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// Records with seq at most this.
    Seq(u64),
    /// Records whose `recorded_at` (in microseconds since the epoch) is
    /// before this.
    RecordedBefore(i64),
}

impl KnownAt {
    /// Parses `#N`, a date, or an RFC 3339 timestamp.
    pub fn parse(text: &str) -> Result<KnownAt, String> {
        let trimmed = text.trim();
        let bound = if let Some(n) = trimmed.strip_prefix('#') {
            Bound::Seq(n.parse().map_err(|_| {
                format!("invalid known-at \"{text}\": after # comes a sequence number, such as #3")
            })?)
        } else if let Ok(when) = When::parse(trimmed) {
            Bound::RecordedBefore(when.end().saturating_mul(1_000_000))
        } else {
            let t = DateTime::parse_from_rfc3339(trimmed).map_err(|_| {
                format!(
                    "invalid known-at \"{text}\": expected #N (a sequence number), a date such as 2026-11-28, or an RFC 3339 timestamp"
                )
            })?;
            Bound::RecordedBefore(t.with_timezone(&Utc).timestamp_micros().saturating_add(1))
        };
        Ok(KnownAt {
            text: trimmed.to_string(),
            bound,
        })
    }

    /// Known at sequence number `seq`.
    pub fn seq(seq: u64) -> KnownAt {
        KnownAt {
            text: format!("#{seq}"),
            bound: Bound::Seq(seq),
        }
    }

    pub fn bound(&self) -> Bound {
        self.bound
    }

    /// Whether a record with this `recorded_at` is known, for time bounds.
    pub fn keeps_time(&self, recorded_at: DateTime<Utc>) -> bool {
        match self.bound {
            Bound::Seq(_) => true,
            Bound::RecordedBefore(before) => recorded_at.timestamp_micros() < before,
        }
    }
}

impl fmt::Display for KnownAt {
    /// The bound as written (trimmed), for echoing in output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros()
    }

    #[test]
    fn every_form_parses() {
        assert_eq!(KnownAt::parse("#3").unwrap().bound(), Bound::Seq(3));
        assert_eq!(KnownAt::parse("#0").unwrap().bound(), Bound::Seq(0));
        assert_eq!(
            KnownAt::parse("2026-11-28").unwrap().bound(),
            Bound::RecordedBefore(micros("2026-11-29T00:00:00Z"))
        );
        assert_eq!(
            KnownAt::parse("2026").unwrap().bound(),
            Bound::RecordedBefore(micros("2027-01-01T00:00:00Z"))
        );
        assert_eq!(
            KnownAt::parse("2026-11-28T20:55:02.173512Z")
                .unwrap()
                .bound(),
            Bound::RecordedBefore(micros("2026-11-28T20:55:02.173513Z"))
        );
        assert_eq!(KnownAt::parse(" #7 ").unwrap().to_string(), "#7");
        assert_eq!(KnownAt::seq(4).to_string(), "#4");
    }

    #[test]
    fn bad_forms_are_refused_with_the_input_quoted() {
        for text in ["#", "#-1", "#x", "yesterday", "2019-13", ""] {
            let err = KnownAt::parse(text).unwrap_err();
            assert!(
                err.starts_with(&format!("invalid known-at \"{text}\"")),
                "{err}"
            );
        }
    }

    #[test]
    fn time_bounds_keep_records_up_to_the_moment() {
        let k = KnownAt::parse("2026-11-28T20:55:02.173512Z").unwrap();
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert!(k.keeps_time(at("2026-11-28T20:55:02.173512Z")));
        assert!(!k.keeps_time(at("2026-11-28T20:55:02.173513Z")));
        assert!(KnownAt::seq(1).keeps_time(at("2099-01-01T00:00:00Z")));
    }
}
