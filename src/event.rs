//! Events and the changes they make: [`Event`], [`Change`], [`Op`],
//! [`Value`], [`Source`], and the rules an event must follow before it may
//! be stored ([`Event::validate`], [`validate_batch`]).
//!
//! This module knows nothing of files or the store: readers in
//! `formats` build events, the store keeps them, `state` replays them.

use compact_str::CompactString;
use rustc_hash::FxHashMap as HashMap;
use std::cmp::Ordering;
use std::fmt;

use crate::names::Names;
use crate::when::When;

/// The longest id, entity or attribute name accepted.
pub const MAX_NAME_LEN: usize = 128;

/// A dated event: something that happened and the facts it changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Unique id: `[a-z0-9][a-z0-9-_.]*`, at most 128 bytes.
    pub id: CompactString,
    /// When it happened, as precisely as the source says.
    pub at: When,
    /// A one-line title.
    pub title: String,
    /// Optional longer text (plain text or Markdown).
    pub summary: Option<String>,
    /// Free-form labels.
    pub tags: Vec<String>,
    /// Where the facts come from.
    pub sources: Vec<Source>,
    /// Ids of earlier events this one replaces.
    pub corrects: Vec<String>,
    /// The changes, applied in the order written.
    pub changes: Vec<Change>,
}

/// A citation. Every field is optional.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Source {
    pub title: Option<String>,
    pub publisher: Option<String>,
    pub url: Option<String>,
    pub published: Option<When>,
}

impl fmt::Display for Source {
    /// The citation as a reader sees it: `"Title", Publisher, 2025-01, URL`,
    /// with the fields that are known.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts = [
            self.title.as_ref().map(|t| format!("\"{t}\"")),
            self.publisher.clone(),
            self.published.map(|p| p.to_string()),
            self.url.clone(),
        ];
        let mut first = true;
        for part in parts.into_iter().flatten() {
            if !first {
                f.write_str(", ")?;
            }
            f.write_str(&part)?;
            first = false;
        }
        Ok(())
    }
}

/// One change to one attribute of one entity.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub entity: CompactString,
    pub attr: CompactString,
    pub op: Op,
}

impl fmt::Display for Change {
    /// The change in words: `set stargate.kind = joint venture`,
    /// `add @oracle to openai.cloud_providers`, `unset openai.exclusive_cloud_provider`,
    /// with `, until 2030` where it has one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (entity, attr) = (&self.entity, &self.attr);
        match &self.op {
            Op::Set { value, .. } => write!(f, "set {entity}.{attr} = {value}")?,
            Op::Unset => write!(f, "unset {entity}.{attr}")?,
            Op::Add { value, .. } => write!(f, "add {value} to {entity}.{attr}")?,
            Op::Remove { value } => write!(f, "remove {value} from {entity}.{attr}")?,
        }
        match self.op.until() {
            Some(until) => write!(f, ", until {until}"),
            None => Ok(()),
        }
    }
}

/// What a change does. `Set`/`Unset` act on single-valued attributes,
/// `Add`/`Remove` on set-valued ones.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// The attribute takes `value`; with `until`, through the end of that date.
    Set { value: Value, until: Option<When> },
    /// The attribute no longer has a value.
    Unset,
    /// `value` joins the set; with `until`, through the end of that date.
    Add { value: Value, until: Option<When> },
    /// `value` leaves the set.
    Remove { value: Value },
}

/// Whether an attribute holds one value or a set of values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttrKind {
    /// Changed with `set` and `unset`.
    Single,
    /// Changed with `add` and `remove`.
    Set,
}

impl AttrKind {
    /// The operations that belong to this kind, for messages.
    pub fn ops(self) -> &'static str {
        match self {
            AttrKind::Single => "set/unset",
            AttrKind::Set => "add/remove",
        }
    }

    /// The kind in words, with its operations, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            AttrKind::Single => "single-valued (set/unset)",
            AttrKind::Set => "set-valued (add/remove)",
        }
    }
}

impl Op {
    /// The operation's keyword as written in event files.
    pub fn keyword(&self) -> &'static str {
        match self {
            Op::Set { .. } => "set",
            Op::Unset => "unset",
            Op::Add { .. } => "add",
            Op::Remove { .. } => "remove",
        }
    }

    /// The kind of attribute this operation acts on.
    pub fn attr_kind(&self) -> AttrKind {
        match self {
            Op::Set { .. } | Op::Unset => AttrKind::Single,
            Op::Add { .. } | Op::Remove { .. } => AttrKind::Set,
        }
    }

    /// The value the operation carries, if any.
    pub fn value(&self) -> Option<&Value> {
        match self {
            Op::Set { value, .. } | Op::Add { value, .. } | Op::Remove { value } => Some(value),
            Op::Unset => None,
        }
    }

    /// The `until` date, if any.
    pub fn until(&self) -> Option<When> {
        match self {
            Op::Set { until, .. } | Op::Add { until, .. } => *until,
            Op::Unset | Op::Remove { .. } => None,
        }
    }
}

impl Change {
    /// `entity.attr`, as written in event files.
    pub fn target(&self) -> String {
        format!("{}.{}", self.entity, self.attr)
    }
}

/// A fact's value.
///
/// Values are totally ordered (by kind, then content; floats by
/// `f64::total_cmp`), and equality agrees with that order.
#[derive(Debug, Clone)]
pub enum Value {
    Text(CompactString),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// A reference to another entity, by id.
    Ref(CompactString),
    Date(When),
    /// An amount with a unit, e.g. 500000000000 USD.
    Amount {
        amount: f64,
        unit: CompactString,
    },
}

/// The largest integer an amount holds exactly (2^53).
pub const MAX_EXACT_AMOUNT: f64 = 9_007_199_254_740_992.0;

impl Value {
    fn rank(&self) -> u8 {
        match self {
            Value::Text(_) => 0,
            Value::Int(_) => 1,
            Value::Float(_) => 2,
            Value::Bool(_) => 3,
            Value::Ref(_) => 4,
            Value::Date(_) => 5,
            Value::Amount { .. } => 6,
        }
    }

    /// Parses the value syntax of the command line (and of text output):
    ///
    /// | written | value |
    /// |---|---|
    /// | `@oracle` | reference to entity `oracle` |
    /// | `42`, `-7` | integer |
    /// | `1.5` | float |
    /// | `true`, `false` | bool |
    /// | `date:2030` | date |
    /// | `500000000000USD`, `1.5 GW` | amount (unit: upper-case letters) |
    /// | `text:42` | the text `42` |
    /// | anything else | text |
    pub fn parse_literal(text: &str) -> Result<Value, String> {
        if let Some(rest) = text.strip_prefix("text:") {
            return Ok(Value::Text(rest.into()));
        }
        if let Some(id) = text.strip_prefix('@') {
            check_slug(id, false).map_err(|reason| format!("reference \"{text}\": {reason}"))?;
            return Ok(Value::Ref(id.into()));
        }
        if let Some(date) = text.strip_prefix("date:") {
            return When::parse(date)
                .map(Value::Date)
                .map_err(|e| e.to_string());
        }
        match text {
            "true" => return Ok(Value::Bool(true)),
            "false" => return Ok(Value::Bool(false)),
            _ => {}
        }
        let (number, unit) = split_number(text);
        if number.is_empty() {
            return Ok(Value::Text(text.into()));
        }
        let spaced = unit.strip_prefix(' ').unwrap_or(unit);
        if spaced.is_empty() && !unit.is_empty() {
            return Ok(Value::Text(text.into()));
        }
        let unit = spaced;
        let is_float = number.contains('.');
        if unit.is_empty() && !is_float {
            return number
                .parse::<i64>()
                .map(Value::Int)
                .map_err(|_| format!("integer \"{text}\" is out of range"));
        }
        let amount: f64 = number
            .parse()
            .map_err(|_| format!("number \"{number}\" is out of range"))?;
        if unit.is_empty() {
            return Ok(Value::Float(amount));
        }
        if is_unit(unit) {
            return Ok(Value::Amount {
                amount,
                unit: unit.into(),
            });
        }
        Ok(Value::Text(text.into()))
    }

    /// Checks what the type alone cannot: reference syntax, finite numbers,
    /// exact amounts, non-empty units.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Value::Ref(id) => check_slug(id, false).map_err(|r| format!("reference \"{id}\": {r}")),
            Value::Float(f) if !f.is_finite() => Err(format!("{f} is not a finite number")),
            Value::Amount { amount, unit } => {
                if !amount.is_finite() {
                    Err(format!("amount {amount} is not a finite number"))
                } else if amount.fract() == 0.0 && amount.abs() > MAX_EXACT_AMOUNT {
                    Err(format!(
                        "amount {amount} is too large to hold exactly (at most 2^53)"
                    ))
                } else if !is_unit(unit) {
                    Err(format!(
                        "unit \"{unit}\" must be 1 to {MAX_UNIT_LEN} upper-case letters, such as USD or GW"
                    ))
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    /// The kind of value, in words, for messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Text(_) => "text",
            Value::Int(_) => "integer",
            Value::Float(_) => "float",
            Value::Bool(_) => "bool",
            Value::Ref(_) => "reference",
            Value::Date(_) => "date",
            Value::Amount { .. } => "amount",
        }
    }
}

/// The longest unit of an amount.
pub const MAX_UNIT_LEN: usize = 16;

/// Whether `unit` is a unit of an amount: 1 to 16 upper-case ASCII letters
/// (currency codes such as USD, or GW). One rule for files and the command
/// line, so that every amount prints in a form that reads back.
pub fn is_unit(unit: &str) -> bool {
    (1..=MAX_UNIT_LEN).contains(&unit.len()) && unit.bytes().all(|b| b.is_ascii_uppercase())
}

/// Splits `-12.5USD` into (`-12.5`, `USD`); the number part is empty when
/// the text does not start with one.
fn split_number(text: &str) -> (&str, &str) {
    let bytes = text.as_bytes();
    let mut i = usize::from(bytes.first() == Some(&b'-'));
    let digits_start = i;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    if i == digits_start {
        return ("", text);
    }
    if i < bytes.len() && bytes[i] == b'.' {
        let fraction_start = i + 1;
        let mut j = fraction_start;
        while j < bytes.len() && bytes[j].is_ascii_digit() {
            j += 1;
        }
        if j == fraction_start {
            return ("", text);
        }
        i = j;
    }
    text.split_at(i)
}

/// Formats an amount: integral amounts without a fraction.
pub fn format_amount(amount: f64) -> String {
    if amount.fract() == 0.0 && amount.abs() <= MAX_EXACT_AMOUNT {
        format!("{}", amount as i64)
    } else {
        format!("{amount}")
    }
}

impl fmt::Display for Value {
    /// Prints the value in the syntax [`Value::parse_literal`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Text(s) => match Value::parse_literal(s) {
                Ok(Value::Text(back)) if back == s => f.write_str(s),
                _ => write!(f, "text:{s}"),
            },
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => {
                let s = format!("{x}");
                if s.contains('.') || !x.is_finite() {
                    f.write_str(&s)
                } else {
                    write!(f, "{s}.0")
                }
            }
            Value::Bool(b) => write!(f, "{b}"),
            Value::Ref(id) => write!(f, "@{id}"),
            Value::Date(w) => write!(f, "date:{w}"),
            Value::Amount { amount, unit } => write!(f, "{} {unit}", format_amount(*amount)),
        }
    }
}

impl Ord for Value {
    fn cmp(&self, other: &Self) -> Ordering {
        use Value::*;
        match (self, other) {
            (Text(a), Text(b)) | (Ref(a), Ref(b)) => a.cmp(b),
            (Int(a), Int(b)) => a.cmp(b),
            (Float(a), Float(b)) => a.total_cmp(b),
            (Bool(a), Bool(b)) => a.cmp(b),
            (Date(a), Date(b)) => a.cmp(b),
            (Amount { amount: a, unit: u }, Amount { amount: b, unit: v }) => {
                u.cmp(v).then(a.total_cmp(b))
            }
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for Value {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Value {}

/// Checks an id or entity slug: `[a-z0-9][a-z0-9-_]*` (with `.` allowed
/// when `dots`), at most [`MAX_NAME_LEN`] bytes.
fn check_slug(s: &str, dots: bool) -> Result<(), String> {
    let allowed = |c: char| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_' || (dots && c == '.')
    };
    let Some(first) = s.chars().next() else {
        return Err("must not be empty".into());
    };
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return Err("must start with a lower-case letter or a digit".into());
    }
    if let Some(bad) = s.chars().find(|c| !allowed(*c)) {
        let also = if dots { "-_." } else { "-_" };
        return Err(format!(
            "contains {bad:?}; only a-z, 0-9 and {also} are allowed"
        ));
    }
    if s.len() > MAX_NAME_LEN {
        return Err(format!(
            "is {} bytes long; at most {MAX_NAME_LEN} are allowed",
            s.len()
        ));
    }
    Ok(())
}

/// Checks an event id: `[a-z0-9][a-z0-9-_.]*`, at most 128 bytes.
pub fn check_id(id: &str) -> Result<(), String> {
    check_slug(id, true)
}

/// Checks an entity id: like an event id, without dots.
pub fn check_entity(entity: &str) -> Result<(), String> {
    check_slug(entity, false)
}

/// Checks an attribute name: `[a-z0-9_]+`, at most 128 bytes.
pub fn check_attr(attr: &str) -> Result<(), String> {
    if attr.is_empty() {
        return Err("must not be empty".into());
    }
    if let Some(bad) = attr
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        return Err(format!("contains {bad:?}; only a-z, 0-9 and _ are allowed"));
    }
    if attr.len() > MAX_NAME_LEN {
        return Err(format!(
            "is {} bytes long; at most {MAX_NAME_LEN} are allowed",
            attr.len()
        ));
    }
    Ok(())
}

/// Splits `entity.attr` into its two checked halves.
pub fn parse_target(target: &str) -> Result<(CompactString, CompactString), String> {
    let Some((entity, attr)) = target.split_once('.') else {
        return Err("must be written entity.attribute".into());
    };
    check_entity(entity).map_err(|r| format!("entity \"{entity}\" {r}"))?;
    check_attr(attr).map_err(|r| format!("attribute \"{attr}\" {r}"))?;
    Ok((entity.into(), attr.into()))
}

/// A rule an event breaks: the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The field, as written in event files (`id`, `changes[2].until`, ...).
    pub field: String,
    /// What is wrong, quoting the value.
    pub message: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Invalid {
        Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field `{}`: {}", self.field, self.message)
    }
}

impl Event {
    /// Checks the rules one event must follow on its own: id, entity and
    /// attribute syntax, values, `until` not before `at`, and no attribute
    /// changed with both set/unset and add/remove.
    pub fn validate(&self) -> Result<(), Invalid> {
        check_id(&self.id).map_err(|r| Invalid::new("id", format!("\"{}\" {r}", self.id)))?;
        if self.title.trim().is_empty() {
            return Err(Invalid::new("title", "must not be empty"));
        }
        for (i, tag) in self.tags.iter().enumerate() {
            if tag.trim().is_empty() || tag.chars().any(char::is_control) {
                return Err(Invalid::new(
                    format!("tags[{i}]"),
                    format!("{tag:?} must be non-empty printable text"),
                ));
            }
        }
        for (i, source) in self.sources.iter().enumerate() {
            if let Some(url) = &source.url
                && (url.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()))
            {
                return Err(Invalid::new(
                    format!("sources[{i}].url"),
                    format!("{url:?} must be a URL, without spaces or control characters"),
                ));
            }
        }
        for (i, id) in self.corrects.iter().enumerate() {
            check_id(id)
                .map_err(|r| Invalid::new(format!("corrects[{i}]"), format!("\"{id}\" {r}")))?;
            if id == self.id {
                return Err(Invalid::new(
                    format!("corrects[{i}]"),
                    "an event cannot correct itself",
                ));
            }
            if self.corrects[..i].contains(id) {
                return Err(Invalid::new(
                    format!("corrects[{i}]"),
                    format!("\"{id}\" is listed twice"),
                ));
            }
        }
        let mut kinds: HashMap<(&str, &str), AttrKind> = HashMap::default();
        for (i, change) in self.changes.iter().enumerate() {
            let field = |name: &str| format!("changes[{i}].{name}");
            check_entity(&change.entity).map_err(|r| {
                Invalid::new(
                    field(change.op.keyword()),
                    format!("entity \"{}\" {r}", change.entity),
                )
            })?;
            check_attr(&change.attr).map_err(|r| {
                Invalid::new(
                    field(change.op.keyword()),
                    format!("attribute \"{}\" {r}", change.attr),
                )
            })?;
            if let Some(value) = change.op.value() {
                value
                    .validate()
                    .map_err(|m| Invalid::new(field("value"), m))?;
            }
            if let Some(until) = change.op.until()
                && until.end() <= self.at.start()
            {
                return Err(Invalid::new(
                    field("until"),
                    format!("\"{until}\" ends before the event's date \"{}\"", self.at),
                ));
            }
            let kind = change.op.attr_kind();
            let earlier = *kinds.entry((&change.entity, &change.attr)).or_insert(kind);
            if earlier != kind {
                return Err(Invalid::new(
                    field(change.op.keyword()),
                    format!(
                        "\"{}\" is changed with both {} and {} in this event; an attribute is either single-valued (set/unset) or a set (add/remove)",
                        change.target(),
                        earlier.ops(),
                        kind.ops()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The distinct entities this event changes, in first-mention order.
    pub fn entities(&self) -> Vec<&str> {
        let mut seen: Vec<&str> = Vec::new();
        for change in &self.changes {
            if !seen.contains(&change.entity.as_str()) {
                seen.push(&change.entity);
            }
        }
        seen
    }
}

/// Checks what no single event can, for a batch that may arrive in chunks:
/// ids unique within the batch, and each attribute used with one kind of
/// operation across the batch and against the kinds already stored.
///
/// It keeps only what later events are checked against (each id with a
/// compact note of where it came from, each attribute's kind), so that a
/// batch of millions of events can be checked without holding it.
#[derive(Debug, Default)]
pub struct BatchCheck {
    files: Vec<std::sync::Arc<str>>,
    ids: Ids,
    entities: Names,
    attrs: Names,
    /// (entity number, attribute number) → how it is used.
    kinds: HashMap<(u32, u32), KnownKind>,
}

/// An attribute's kind, and the event of the batch that fixed it (`None`:
/// the store had it).
type KnownKind = (AttrKind, Option<CompactString>);

impl BatchCheck {
    pub fn new() -> BatchCheck {
        BatchCheck::default()
    }

    /// Checks the next event of the batch; `known_kind` says how the store
    /// already uses an attribute. Returns the changes (by index) whose
    /// attribute neither the store nor the batch so far has used.
    pub fn check(
        &mut self,
        located: &Located,
        known_kind: impl FnMut(&str, &str) -> Option<AttrKind>,
    ) -> Result<Vec<usize>, Invalid> {
        located.event.validate()?;
        self.check_valid(located, known_kind)
    }

    /// Like [`BatchCheck::check`], for an event that passed
    /// [`Event::validate`] already (one of a [`Validated`] chunk).
    pub(crate) fn check_valid(
        &mut self,
        located: &Located,
        mut known_kind: impl FnMut(&str, &str) -> Option<AttrKind>,
    ) -> Result<Vec<usize>, Invalid> {
        let mut first_uses = Vec::new();
        let event = &located.event;
        if let Some(Seen { file, number, line }) = self.ids.get(&event.id) {
            let first = Origin {
                file: self.files[file as usize].clone(),
                number: number as usize,
                line: (line > 0).then_some(line as usize),
                id: Some(event.id.clone()),
            };
            return Err(Invalid::new(
                "id",
                format!(
                    "\"{}\" is used twice in this batch (also by {first})",
                    event.id
                ),
            ));
        }
        for (i, change) in event.changes.iter().enumerate() {
            let kind = change.op.attr_kind();
            let attr = (
                self.entities.number(&change.entity),
                self.attrs.number(&change.attr),
            );
            let (earlier, whom) = match self.kinds.get(&attr) {
                Some(known) => known,
                None => {
                    let known = match known_kind(&change.entity, &change.attr) {
                        Some(stored) => (stored, None),
                        None => {
                            first_uses.push(i);
                            (kind, Some(event.id.clone()))
                        }
                    };
                    self.kinds.entry(attr).or_insert(known)
                }
            };
            let earlier = *earlier;
            if earlier != kind {
                let whom = match whom {
                    Some(id) => format!("event \"{id}\""),
                    None => "the store".to_string(),
                };
                return Err(Invalid::new(
                    format!("changes[{i}].{}", change.op.keyword()),
                    format!(
                        "\"{}\" is {} in {whom}; it cannot take {}",
                        change.target(),
                        earlier.describe(),
                        change.op.keyword()
                    ),
                ));
            }
        }
        let origin = &located.origin;
        let file = match self.files.iter().rposition(|f| *f == origin.file) {
            Some(i) => i,
            None => {
                self.files.push(origin.file.clone());
                self.files.len() - 1
            }
        };
        let compact = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let seen = Seen {
            file: compact(file),
            number: compact(origin.number),
            line: compact(origin.line.unwrap_or(0)),
        };
        if !self.ids.insert(&event.id, seen) {
            return Err(Invalid::new(
                "id",
                format!(
                    "one event too many: a batch holds at most {} events",
                    u64::from(u32::MAX) + 1
                ),
            ));
        }
        Ok(first_uses)
    }
}

/// Where an event of a batch came from: an index into the batch's files,
/// its number there, and its line (0 if none).
#[derive(Debug, Clone, Copy)]
struct Seen {
    file: u32,
    number: u32,
    line: u32,
}

/// The ids of a batch so far, each with where its event came from, in
/// about 40 bytes an id (a map of boxed strings took twice that, a tenth
/// of a million-event import's memory): the ids numbered, and where each
/// number's event came from.
#[derive(Debug, Default)]
struct Ids {
    names: Names,
    seen: Vec<Seen>,
}

impl Ids {
    /// Where the event with this id came from, if the batch has one.
    fn get(&self, id: &str) -> Option<Seen> {
        self.names.find(id).map(|n| self.seen[n as usize])
    }

    /// Adds an id the batch does not have yet; false if the batch already
    /// holds as many ids as can be numbered.
    fn insert(&mut self, id: &str, seen: Seen) -> bool {
        debug_assert!(self.get(id).is_none(), "a new id");
        if self.names.try_number(id).is_none() {
            return false;
        }
        self.seen.push(seen);
        true
    }
}

/// Checks a whole batch at once (see [`BatchCheck`]); a problem comes with
/// the index of the event that has it.
pub fn validate_batch(
    batch: &[Located],
    mut known_kind: impl FnMut(&str, &str) -> Option<AttrKind>,
) -> Result<(), (usize, Invalid)> {
    let mut check = BatchCheck::new();
    for (index, located) in batch.iter().enumerate() {
        check
            .check(located, &mut known_kind)
            .map_err(|invalid| (index, invalid))?;
    }
    Ok(())
}

/// Where an event came from: file, position in the file, and its id once known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file as the user named it, or `<stdin>` (shared by every event
    /// read from it).
    pub file: std::sync::Arc<str>,
    /// 1-based position of the event in its file (0 where there is no file).
    pub number: usize,
    /// 1-based line where the event starts, where the format tells.
    pub line: Option<usize>,
    /// The event's id, when it could be read.
    pub id: Option<CompactString>,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: event", self.file)?;
        if self.number > 0 {
            write!(f, " #{}", self.number)?;
        }
        if let Some(id) = &self.id {
            write!(f, " \"{id}\"")?;
        }
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        Ok(())
    }
}

/// An event as read, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    pub event: Event,
    pub origin: Origin,
    /// Where and when a record of this event was first appended, for an
    /// event read back from an export (`seq`, `recorded_at`, `hash`).
    pub recorded: Option<Recorded>,
}

impl Located {
    /// A new event from `origin`, never recorded before.
    pub fn new(event: Event, origin: Origin) -> Located {
        Located {
            event,
            origin,
            recorded: None,
        }
    }
}

/// Events that passed [`Event::validate`] as they were read. They are only
/// lent out from here, so they cannot have changed since, and checking them
/// for a batch need not validate them again.
#[derive(Debug)]
pub struct Validated(Vec<Located>);

impl Validated {
    /// Events each of which passed [`Event::validate`].
    pub(crate) fn new(events: Vec<Located>) -> Validated {
        debug_assert!(events.iter().all(|l| l.event.validate().is_ok()));
        Validated(events)
    }

    pub fn into_inner(self) -> Vec<Located> {
        self.0
    }
}

impl std::ops::Deref for Validated {
    type Target = [Located];
    fn deref(&self) -> &[Located] {
        &self.0
    }
}

/// A record's place in the log it was exported from. The reader has
/// checked that `hash` is the hash of `prev_hash` and this record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    pub seq: u64,
    pub at: chrono::DateTime<chrono::Utc>,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, at: &str, changes: Vec<Change>) -> Event {
        Event {
            id: id.into(),
            at: When::parse(at).unwrap(),
            title: "a title".into(),
            summary: None,
            tags: vec![],
            sources: vec![],
            corrects: vec![],
            changes,
        }
    }

    fn change(target: &str, op: Op) -> Change {
        let (entity, attr) = parse_target(target).unwrap();
        Change { entity, attr, op }
    }

    fn set(target: &str, value: Value) -> Change {
        change(target, Op::Set { value, until: None })
    }

    fn add(target: &str, value: Value) -> Change {
        change(target, Op::Add { value, until: None })
    }

    #[test]
    fn literals_parse_to_typed_values() {
        let cases = [
            ("@oracle", Value::Ref("oracle".into())),
            ("42", Value::Int(42)),
            ("-7", Value::Int(-7)),
            ("1.5", Value::Float(1.5)),
            ("true", Value::Bool(true)),
            ("false", Value::Bool(false)),
            ("date:2030", Value::Date(When::parse("2030").unwrap())),
            (
                "500000000000USD",
                Value::Amount {
                    amount: 5e11,
                    unit: "USD".into(),
                },
            ),
            (
                "1.5 GW",
                Value::Amount {
                    amount: 1.5,
                    unit: "GW".into(),
                },
            ),
            ("joint venture", Value::Text("joint venture".into())),
            ("text:42", Value::Text("42".into())),
            ("2 cats", Value::Text("2 cats".into())),
            ("4.", Value::Text("4.".into())),
            ("", Value::Text("".into())),
        ];
        for (text, value) in cases {
            assert_eq!(Value::parse_literal(text), Ok(value), "{text}");
        }
        assert!(
            Value::parse_literal("@Oracle")
                .unwrap_err()
                .contains("\"@Oracle\"")
        );
        assert!(
            Value::parse_literal("date:2019-13")
                .unwrap_err()
                .contains("2019-13")
        );
        assert!(
            Value::parse_literal("99999999999999999999")
                .unwrap_err()
                .contains("out of range")
        );
    }

    #[test]
    fn values_print_in_the_syntax_they_are_read_in() {
        let values = [
            Value::Ref("oracle".into()),
            Value::Int(-3),
            Value::Float(2.0),
            Value::Float(0.25),
            Value::Bool(false),
            Value::Date(When::parse("2024-06").unwrap()),
            Value::Amount {
                amount: 5e11,
                unit: "USD".into(),
            },
            Value::Amount {
                amount: 2.5,
                unit: "GW".into(),
            },
            Value::Text("White House".into()),
            Value::Text("42".into()),
            Value::Text("@not-a-ref".into()),
            Value::Text("text:x".into()),
            Value::Text("true".into()),
            Value::Text("".into()),
        ];
        for value in values {
            let printed = value.to_string();
            assert_eq!(
                Value::parse_literal(&printed),
                Ok(value.clone()),
                "{printed}"
            );
        }
        assert_eq!(
            Value::Amount {
                amount: 5e11,
                unit: "USD".into()
            }
            .to_string(),
            "500000000000 USD"
        );
    }

    #[test]
    fn values_are_totally_ordered_and_equal_by_that_order() {
        assert!(Value::Text("b".into()) < Value::Int(0));
        assert!(Value::Float(f64::NAN) == Value::Float(f64::NAN));
        assert!(Value::Int(1) != Value::Float(1.0));
        assert!(Value::Ref("a".into()) < Value::Ref("b".into()));
        assert!(Value::Text("a".into()) != Value::Ref("a".into()));
    }

    #[test]
    fn a_valid_event_passes() {
        let e = event(
            "stargate-announced-2025",
            "2025-01-21",
            vec![
                set("stargate.kind", Value::Text("joint venture".into())),
                add("stargate.partners", Value::Ref("openai".into())),
            ],
        );
        assert_eq!(e.validate(), Ok(()));
        assert_eq!(e.entities(), ["stargate"]);
    }

    #[test]
    fn each_broken_rule_names_its_field() {
        let base = || event("ok", "2024-06", vec![]);
        let cases: Vec<(Event, &str, &str)> = vec![
            (
                Event {
                    id: "Bad".into(),
                    ..base()
                },
                "id",
                "\"Bad\" must start",
            ),
            (
                Event {
                    id: "a b".into(),
                    ..base()
                },
                "id",
                "contains ' '",
            ),
            (
                Event {
                    id: "x".repeat(129).into(),
                    ..base()
                },
                "id",
                "at most 128",
            ),
            (
                Event {
                    id: "".into(),
                    ..base()
                },
                "id",
                "must not be empty",
            ),
            (
                Event {
                    title: " ".into(),
                    ..base()
                },
                "title",
                "must not be empty",
            ),
            (
                Event {
                    tags: vec!["".into()],
                    ..base()
                },
                "tags[0]",
                "non-empty",
            ),
            (
                Event {
                    corrects: vec!["ok".into()],
                    ..base()
                },
                "corrects[0]",
                "itself",
            ),
            (
                event(
                    "ok",
                    "2024-06",
                    vec![Change {
                        entity: "Open".into(),
                        attr: "x".into(),
                        op: Op::Unset,
                    }],
                ),
                "changes[0].unset",
                "entity \"Open\"",
            ),
            (
                event(
                    "ok",
                    "2024-06",
                    vec![Change {
                        entity: "openai".into(),
                        attr: "a-b".into(),
                        op: Op::Unset,
                    }],
                ),
                "changes[0].unset",
                "attribute \"a-b\"",
            ),
            (
                event(
                    "ok",
                    "2024-06",
                    vec![set("openai.x", Value::Float(f64::INFINITY))],
                ),
                "changes[0].value",
                "finite",
            ),
            (
                event(
                    "ok",
                    "2024-06",
                    vec![set("openai.x", Value::Ref("Oracle".into()))],
                ),
                "changes[0].value",
                "reference \"Oracle\"",
            ),
            (
                event(
                    "ok",
                    "2024-06",
                    vec![set(
                        "openai.x",
                        Value::Amount {
                            amount: 1e300,
                            unit: "USD".into(),
                        },
                    )],
                ),
                "changes[0].value",
                "too large",
            ),
            (
                event(
                    "ok",
                    "2024-06",
                    vec![set(
                        "openai.x",
                        Value::Amount {
                            amount: 1.0,
                            unit: "usd".into(),
                        },
                    )],
                ),
                "changes[0].value",
                "unit \"usd\" must be 1 to 16 upper-case letters",
            ),
            (
                event(
                    "ok",
                    "2024-06",
                    vec![change(
                        "openai.x",
                        Op::Set {
                            value: Value::Int(1),
                            until: Some(When::parse("2024-05").unwrap()),
                        },
                    )],
                ),
                "changes[0].until",
                "\"2024-05\" ends before the event's date \"2024-06\"",
            ),
            (
                event(
                    "ok",
                    "2024-06",
                    vec![
                        set("openai.x", Value::Int(1)),
                        add("openai.x", Value::Int(2)),
                    ],
                ),
                "changes[1].add",
                "\"openai.x\" is changed with both set/unset and add/remove",
            ),
        ];
        for (e, field, fragment) in cases {
            let err = e.validate().expect_err(fragment);
            assert_eq!(err.field, field, "{err}");
            assert!(err.message.contains(fragment), "{err}");
        }
    }

    #[test]
    fn until_may_end_inside_a_coarser_event_date() {
        let e = event(
            "ok",
            "2019",
            vec![change(
                "openai.x",
                Op::Set {
                    value: Value::Int(1),
                    until: Some(When::parse("2019-03").unwrap()),
                },
            )],
        );
        assert_eq!(e.validate(), Ok(()));
    }

    #[test]
    fn batches_reject_duplicate_ids_and_mixed_kinds() {
        let located = |e: Event, file: &str| {
            let origin = Origin {
                file: file.into(),
                number: 1,
                line: Some(1),
                id: Some(e.id.clone()),
            };
            Located::new(e, origin)
        };
        let a = located(
            event("a", "2019", vec![set("openai.x", Value::Int(1))]),
            "1.toml",
        );
        let b = located(
            event("b", "2020", vec![add("openai.x", Value::Int(1))]),
            "2.toml",
        );
        let (index, invalid) = validate_batch(&[a.clone(), b], |_, _| None).unwrap_err();
        assert_eq!(index, 1);
        assert!(invalid.message.contains("in event \"a\""), "{invalid}");

        let again = located(a.event.clone(), "2.toml");
        let (index, invalid) = validate_batch(&[a.clone(), again], |_, _| None).unwrap_err();
        assert_eq!((index, invalid.field.as_str()), (1, "id"));
        assert!(
            invalid
                .message
                .contains("used twice in this batch (also by 1.toml: event #1 \"a\" (line 1))"),
            "{invalid}"
        );

        let (_, invalid) =
            validate_batch(std::slice::from_ref(&a), |_, _| Some(AttrKind::Set)).unwrap_err();
        assert!(invalid.message.contains("in the store"), "{invalid}");
        assert_eq!(validate_batch(&[a], |_, _| Some(AttrKind::Single)), Ok(()));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]

        /// Ids kept end to end find exactly what a map of them finds,
        /// where one id is a prefix of the next or two ids side by side
        /// spell a third.
        #[test]
        fn batch_ids_answer_as_a_map_does(
            ids in proptest::collection::vec("[ab]{1,4}", 0..200),
            asked in proptest::collection::vec("[ab]{1,5}", 0..50),
        ) {
            let mut kept = Ids::default();
            let mut model: HashMap<String, u32> = HashMap::default();
            for (n, id) in ids.iter().enumerate() {
                let seen = Seen { file: 0, number: n as u32, line: 0 };
                proptest::prop_assert_eq!(kept.get(id).map(|s| s.number), model.get(id).copied());
                if !model.contains_key(id) {
                    proptest::prop_assert!(kept.insert(id, seen));
                    model.insert(id.clone(), n as u32);
                }
            }
            for id in ids.iter().chain(&asked) {
                proptest::prop_assert_eq!(kept.get(id).map(|s| s.number), model.get(id).copied());
            }
        }
    }

    #[test]
    fn a_batch_check_names_the_changes_that_first_use_an_attribute() {
        let located = |e: Event| {
            let origin = Origin {
                file: "1.jsonl".into(),
                number: 1,
                line: None,
                id: Some(e.id.clone()),
            };
            Located::new(e, origin)
        };
        let mut check = BatchCheck::new();
        let stored = |entity: &str, _: &str| (entity == "old").then_some(AttrKind::Single);
        let first = located(event(
            "a",
            "2019",
            vec![
                set("old.v", Value::Int(1)),
                set("openai.v", Value::Int(1)),
                add("openai.s", Value::Int(1)),
                add("openai.s", Value::Int(2)),
            ],
        ));
        assert_eq!(check.check(&first, stored), Ok(vec![1, 2]));
        let second = located(event(
            "b",
            "2020",
            vec![
                set("openai.v", Value::Int(2)),
                set("oracle.v", Value::Int(3)),
            ],
        ));
        assert_eq!(check.check(&second, stored), Ok(vec![1]));
    }

    #[test]
    fn targets_split_into_entity_and_attribute() {
        assert_eq!(
            parse_target("openai.cloud_providers"),
            Ok(("openai".into(), "cloud_providers".into()))
        );
        assert!(
            parse_target("openai")
                .unwrap_err()
                .contains("entity.attribute")
        );
        assert!(
            parse_target("open.ai.x")
                .unwrap_err()
                .contains("attribute \"ai.x\"")
        );
        assert!(
            parse_target("OpenAI.x")
                .unwrap_err()
                .contains("entity \"OpenAI\"")
        );
    }
}
