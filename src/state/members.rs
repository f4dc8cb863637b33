//! The members of a set-valued attribute.

use std::collections::BTreeMap;
use std::collections::btree_map;

use super::Provenance;
use crate::event::Value;

/// Past this many members a set moves from a sorted vector to a B-tree.
const FEW: usize = 32;

/// The members of a set, each with its provenance, in value order.
///
/// Sets hold a handful of members, so they are kept in a sorted vector:
/// one allocation, found by binary search, cheap to build from a checkpoint
/// (whose members are stored in order), to clone and to drop. A set that
/// grows past 32 members moves to a B-tree, so that adding to a large
/// set stays O(log n); it stays there.
#[derive(Clone)]
pub struct Members(Repr);

#[derive(Clone)]
enum Repr {
    Few(Vec<(Value, Provenance)>),
    Many(BTreeMap<Value, Provenance>),
}

impl Default for Members {
    fn default() -> Members {
        Members::new()
    }
}

/// As a map from value to provenance, whichever way the set is kept.
impl std::fmt::Debug for Members {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl PartialEq for Members {
    fn eq(&self, other: &Members) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Members {
    pub fn new() -> Members {
        Members(Repr::Few(Vec::new()))
    }

    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Few(few) => few.len(),
            Repr::Many(many) => many.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The provenance of `value`, if it is a member.
    pub fn get(&self, value: &Value) -> Option<&Provenance> {
        match &self.0 {
            Repr::Few(few) => few
                .binary_search_by(|(v, _)| v.cmp(value))
                .ok()
                .map(|i| &few[i].1),
            Repr::Many(many) => many.get(value),
        }
    }

    pub fn get_mut(&mut self, value: &Value) -> Option<&mut Provenance> {
        match &mut self.0 {
            Repr::Few(few) => few
                .binary_search_by(|(v, _)| v.cmp(value))
                .ok()
                .map(|i| &mut few[i].1),
            Repr::Many(many) => many.get_mut(value),
        }
    }

    /// Makes `value` a member with `provenance`, replacing the provenance
    /// it had if it was one.
    pub fn insert(&mut self, value: Value, provenance: Provenance) {
        match &mut self.0 {
            Repr::Few(few) => match few.binary_search_by(|(v, _)| v.cmp(&value)) {
                Ok(i) => few[i].1 = provenance,
                Err(i) if few.len() < FEW => few.insert(i, (value, provenance)),
                Err(_) => {
                    let mut many: BTreeMap<_, _> = std::mem::take(few).into_iter().collect();
                    many.insert(value, provenance);
                    self.0 = Repr::Many(many);
                }
            },
            Repr::Many(many) => {
                many.insert(value, provenance);
            }
        }
    }

    /// Takes `value` out of the set, with its provenance.
    pub fn remove_entry(&mut self, value: &Value) -> Option<(Value, Provenance)> {
        match &mut self.0 {
            Repr::Few(few) => few
                .binary_search_by(|(v, _)| v.cmp(value))
                .ok()
                .map(|i| few.remove(i)),
            Repr::Many(many) => many.remove_entry(value),
        }
    }

    /// Every member in value order, with its provenance.
    pub fn iter(&self) -> Iter<'_> {
        Iter(match &self.0 {
            Repr::Few(few) => Walk::Few(few.iter()),
            Repr::Many(many) => Walk::Many(many.iter()),
        })
    }
}

/// Members in any order; a value given twice keeps the last provenance.
impl FromIterator<(Value, Provenance)> for Members {
    fn from_iter<I: IntoIterator<Item = (Value, Provenance)>>(members: I) -> Members {
        let mut few: Vec<(Value, Provenance)> = members.into_iter().collect();
        if !few.windows(2).all(|w| w[0].0 < w[1].0) {
            // Stable, so that among equal values the last given is last.
            few.sort_by(|a, b| a.0.cmp(&b.0));
            let mut kept: Vec<(Value, Provenance)> = Vec::with_capacity(few.len());
            for member in few {
                match kept.last_mut() {
                    Some(last) if last.0 == member.0 => *last = member,
                    _ => kept.push(member),
                }
            }
            few = kept;
        }
        if few.len() > FEW {
            return Members(Repr::Many(few.into_iter().collect()));
        }
        Members(Repr::Few(few))
    }
}

/// The iterator of [`Members::iter`].
pub struct Iter<'a>(Walk<'a>);

enum Walk<'a> {
    Few(std::slice::Iter<'a, (Value, Provenance)>),
    Many(btree_map::Iter<'a, Value, Provenance>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a Value, &'a Provenance);

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            Walk::Few(few) => few.next().map(|(v, p)| (v, p)),
            Walk::Many(many) => many.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            Walk::Few(few) => few.size_hint(),
            Walk::Many(many) => many.size_hint(),
        }
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {

    use proptest::prelude::*;

    use super::*;
    use crate::when::When;

    fn provenance(n: u32) -> Provenance {
        Provenance {
            event: format!("ev{n}").into(),
            since: When::parse("2020").unwrap(),
            uncertain: false,
            until: None,
        }
    }

    #[derive(Debug, Clone)]
    enum Step {
        Insert(i64, u32),
        Remove(i64),
        Touch(i64),
    }

    fn step() -> impl Strategy<Value = Step> {
        // Few distinct values keep hits common; up to 100 lets sets pass FEW.
        prop_oneof![
            3 => (0..100i64, any::<u32>()).prop_map(|(v, p)| Step::Insert(v, p)),
            1 => (0..100i64).prop_map(Step::Remove),
            1 => (0..100i64).prop_map(Step::Touch),
        ]
    }

    proptest! {
        /// Members behave as a map from value to provenance, small or large.
        #[test]
        fn members_behave_as_a_sorted_map(steps in proptest::collection::vec(step(), 0..400)) {
            let mut members = Members::new();
            let mut model: BTreeMap<Value, Provenance> = BTreeMap::new();
            for step in steps {
                match step {
                    Step::Insert(v, p) => {
                        members.insert(Value::Int(v), provenance(p));
                        model.insert(Value::Int(v), provenance(p));
                    }
                    Step::Remove(v) => {
                        prop_assert_eq!(
                            members.remove_entry(&Value::Int(v)),
                            model.remove_entry(&Value::Int(v))
                        );
                    }
                    Step::Touch(v) => {
                        if let Some(p) = members.get_mut(&Value::Int(v)) {
                            p.uncertain = true;
                        }
                        if let Some(p) = model.get_mut(&Value::Int(v)) {
                            p.uncertain = true;
                        }
                    }
                }
                prop_assert_eq!(members.len(), model.len());
                prop_assert!(members.iter().eq(model.iter()));
                prop_assert_eq!(members.get(&Value::Int(7)), model.get(&Value::Int(7)));
            }
            let collected: Members = model.clone().into_iter().collect();
            prop_assert_eq!(&collected, &members);
        }

        /// Collecting keeps, for a value given twice, the last provenance,
        /// in whatever order the members come.
        #[test]
        fn collecting_sorts_and_keeps_the_last(given in proptest::collection::vec((0..50i64, any::<u32>()), 0..120)) {
            let members: Members = given.iter().map(|&(v, p)| (Value::Int(v), provenance(p))).collect();
            let model: BTreeMap<Value, Provenance> = given.iter().map(|&(v, p)| (Value::Int(v), provenance(p))).collect();
            prop_assert_eq!(members.len(), model.len());
            prop_assert!(members.iter().eq(model.iter()));
        }
    }

    #[test]
    fn a_large_set_equals_the_same_set_kept_small() {
        let mut grown = Members::new();
        for v in 0..FEW as i64 {
            grown.insert(Value::Int(v), provenance(1));
        }
        assert!(matches!(grown.0, Repr::Few(_)), "{FEW} members: a vector");
        grown.insert(Value::Int(FEW as i64), provenance(1));
        grown.remove_entry(&Value::Int(0));
        let small: Members = (1..=FEW as i64)
            .map(|v| (Value::Int(v), provenance(1)))
            .collect();
        assert!(matches!(grown.0, Repr::Many(_)) && matches!(small.0, Repr::Few(_)));
        assert_eq!(grown, small);
        assert_eq!(format!("{grown:?}"), format!("{small:?}"));
        grown.insert(Value::Int(FEW as i64), provenance(2));
        assert_ne!(grown, small);
    }
}
