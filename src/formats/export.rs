//! What every export starts from: the events chosen, in replay order, and,
//! where asked, the state at a date. Each format lives in a module of its
//! own and walks this one structure; dates print through [`When`], values
//! through [`crate::Value`]'s `Display`, changes through
//! [`crate::Change`]'s and citations through [`crate::Source`]'s.

use std::collections::HashMap;

use crate::event::{Event, Source};
use crate::state::State;
use crate::store::TimelineEntry;
use crate::when::{Precision, When};

/// The events and states an export writes.
#[derive(Debug)]
pub struct Export {
    /// A title for the formats that have one.
    pub title: String,
    /// The events chosen, in replay order, corrected ones left out.
    pub events: Vec<TimelineEntry>,
    /// The state at `--at`, when it was asked for.
    pub state: Option<StateAt>,
    /// The states the HTML page steps through (see [`Export::steps`]).
    pub steps: Vec<StateAt>,
    /// `--known-at` as the user wrote it, for documents that say what they show.
    pub known_at: Option<String>,
}

/// A state and the date it is taken at (the end of that date).
#[derive(Debug)]
pub struct StateAt {
    pub at: When,
    pub state: State,
}

impl Export {
    /// An export of `events` with nothing else.
    pub fn new(title: impl Into<String>, events: Vec<TimelineEntry>) -> Export {
        Export {
            title: title.into(),
            events,
            state: None,
            steps: Vec::new(),
            known_at: None,
        }
    }

    /// The events, in replay order.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.events.iter().map(|entry| &entry.record.event)
    }

    /// The dates a page stepping through the timeline stops at, in order of
    /// their end (a state is taken at the end of its date): each event's
    /// date; for a year or a month, also its first day, when such an event
    /// may or may not have happened yet; and the day after each `until`,
    /// when a fact has expired. Dates that end together give
    /// the same state; the coarsest of them is kept. The state at each is
    /// [`Export::steps`]; [`Export::step_of`] finds an event's.
    pub fn step_dates(&self) -> Vec<When> {
        let mut dates: Vec<When> = Vec::new();
        for event in self.events() {
            dates.push(event.at);
            if event.at.precision() < Precision::Day
                && let Some(first_day) = When::from_parts(event.at.start(), Precision::Day)
            {
                dates.push(first_day);
            }
            // The day after an `until`: the first on which the fact is gone.
            for until in event.changes.iter().filter_map(|c| c.op.until()) {
                dates.extend(When::from_parts(until.end(), Precision::Day));
            }
        }
        dates.sort_by_key(|d| (d.end(), d.precision()));
        dates.dedup_by_key(|d| d.end());
        dates
    }

    /// The index in `step_dates` of the step at which `at` has ended.
    pub fn step_of(step_dates: &[When], at: When) -> usize {
        step_dates.partition_point(|d| d.end() < at.end())
    }

    /// Every source the events cite, each once, numbered from 1 in order of
    /// first citation.
    pub fn citations(&self) -> Citations<'_> {
        let mut citations = Citations::default();
        for event in self.events() {
            let numbers = event
                .sources
                .iter()
                .map(|source| {
                    let key = source.to_string();
                    *citations.numbers.entry(key).or_insert_with(|| {
                        citations.sources.push(source);
                        citations.sources.len()
                    })
                })
                .collect();
            citations.by_event.push(numbers);
        }
        citations
    }
}

/// Escapes text for HTML (element content and quoted attribute values).
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The numbered sources of an export.
#[derive(Debug, Default)]
pub struct Citations<'a> {
    /// The sources, numbered from 1 in this order.
    pub sources: Vec<&'a Source>,
    /// For each event of the export, in order, the numbers of its sources.
    pub by_event: Vec<Vec<usize>>,
    numbers: HashMap<String, usize>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn each_source_is_numbered_once_in_order_of_first_citation() {
        let source = |title: &str| Source {
            title: Some(title.into()),
            ..Source::default()
        };
        let mut a = testing::event("a", "2019", &[]);
        a.sources = vec![source("one"), source("two")];
        let mut b = testing::event("b", "2020", &[]);
        b.sources = vec![source("two"), source("three")];
        let export = Export::new("t", testing::entries(vec![a, b]));
        let citations = export.citations();
        let titles: Vec<_> = citations
            .sources
            .iter()
            .map(|s| s.title.as_deref().unwrap())
            .collect();
        assert_eq!(titles, ["one", "two", "three"]);
        assert_eq!(citations.by_event, vec![vec![1, 2], vec![2, 3]]);
    }

    #[test]
    fn a_page_stops_at_each_date_the_state_can_change() {
        let until = crate::event::Op::Set {
            value: crate::event::Value::Int(1),
            until: Some(testing::w("2021")),
        };
        let export = Export::new(
            "t",
            testing::entries(vec![
                testing::event("a", "2019", &[]),
                testing::event("b", "2019-12-31", &[]),
                testing::event("c", "2020-05-03", &[("x.v", until)]),
            ]),
        );
        let dates: Vec<String> = export.step_dates().iter().map(|d| d.to_string()).collect();
        // "2019-12-31" ends with "2019": the same state, the coarser date kept.
        assert_eq!(dates, ["2019-01-01", "2019", "2020-05-03", "2022-01-01"]);
        assert_eq!(
            Export::step_of(&export.step_dates(), testing::w("2019-12-31")),
            1
        );
    }
}
