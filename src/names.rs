//! Numbers for names: each distinct name gets the next number, the first
//! time it is seen, and keeps it.
//!
//! A state, and a batch checking its attributes' kinds, refer to entities
//! and attributes by these numbers: finding an attribute then hashes two
//! short names in small tables and one integer key, instead of hashing and
//! comparing a long key in a table of every attribute there is.

use std::hash::BuildHasher;

/// Distinct names, numbered from 0 in the order first seen: the names end
/// to end in one string, and a hash table of their numbers.
#[derive(Debug, Clone, Default)]
pub struct Names {
    text: String,
    /// Where each name ends in `text`.
    ends: Vec<usize>,
    /// Numbers, by the hash of their name.
    table: hashbrown::HashTable<u32>,
}

fn hash(name: &str) -> u64 {
    rustc_hash::FxBuildHasher.hash_one(name)
}

/// The name numbered `number` in `text` whose names end at `ends`.
fn name_at<'a>(text: &'a str, ends: &[usize], number: u32) -> &'a str {
    let number = number as usize;
    let start = number.checked_sub(1).map_or(0, |i| ends[i]);
    &text[start..ends[number]]
}

impl Names {
    /// The number of `name`, if it has one.
    pub fn find(&self, name: &str) -> Option<u32> {
        self.table
            .find(hash(name), |&n| name_at(&self.text, &self.ends, n) == name)
            .copied()
    }

    /// The number of `name`, given the next one if it has none yet.
    ///
    /// # Panics
    ///
    /// Past 2³² names, which no state reaches: it would hold more facts
    /// than memory does.
    pub fn number(&mut self, name: &str) -> u32 {
        self.try_number(name).expect("fewer than 2^32 names")
    }

    /// Like [`Names::number`]; `None` for a new name once there are 2³².
    pub fn try_number(&mut self, name: &str) -> Option<u32> {
        let hash = hash(name);
        let Names { text, ends, table } = self;
        let found = table.find(hash, |&n| name_at(text, ends, n) == name);
        if let Some(&number) = found {
            return Some(number);
        }
        let number = u32::try_from(ends.len()).ok()?;
        text.push_str(name);
        ends.push(text.len());
        let rehash = |&n: &u32| self::hash(name_at(text, ends, n));
        table.insert_unique(hash, number, rehash);
        Some(number)
    }

    /// The name numbered `number`.
    ///
    /// # Panics
    ///
    /// If no name has that number.
    pub fn name(&self, number: u32) -> &str {
        name_at(&self.text, &self.ends, number)
    }

    /// How many names there are.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// For each number, its place among the names in sorted order.
    pub fn ranks(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.len() as u32).collect();
        order.sort_unstable_by_key(|&n| self.name(n));
        let mut ranks = vec![0; order.len()];
        for (rank, &n) in order.iter().enumerate() {
            ranks[n as usize] = rank as u32;
        }
        ranks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn numbers_are_given_in_order_first_seen_and_kept() {
        let mut names = Names::default();
        assert_eq!(names.find("openai"), None);
        assert_eq!(names.number("openai"), 0);
        assert_eq!(names.number("microsoft"), 1);
        assert_eq!(names.number("openai"), 0);
        // A name that is a prefix of another is a name of its own.
        assert_eq!(names.number("open"), 2);
        assert_eq!(names.number(""), 3);
        assert_eq!(names.find("microsoft"), Some(1));
        assert_eq!(names.find("micro"), None);
        assert_eq!(
            (0..4).map(|n| names.name(n)).collect::<Vec<_>>(),
            ["openai", "microsoft", "open", ""]
        );
        assert_eq!(names.len(), 4);
        // Sorted: "", "microsoft", "open", "openai".
        assert_eq!(names.ranks(), [3, 1, 2, 0]);
    }

    proptest! {
        /// Numbering agrees with a map from name to first position, past
        /// the table's growth.
        #[test]
        fn agrees_with_a_map(words in prop::collection::vec("[a-e]{0,4}", 0..300)) {
            let mut names = Names::default();
            let mut model: std::collections::HashMap<String, u32> = Default::default();
            for word in &words {
                let next = model.len() as u32;
                let expected = *model.entry(word.clone()).or_insert(next);
                prop_assert_eq!(names.number(word), expected);
            }
            prop_assert_eq!(names.len(), model.len());
            for (word, &number) in &model {
                prop_assert_eq!(names.find(word), Some(number));
                prop_assert_eq!(names.name(number), word.as_str());
            }
            let ranks = names.ranks();
            let mut sorted: Vec<&String> = model.keys().collect();
            sorted.sort();
            for (rank, word) in sorted.into_iter().enumerate() {
                prop_assert_eq!(ranks[model[word] as usize] as usize, rank);
            }
        }
    }
}
