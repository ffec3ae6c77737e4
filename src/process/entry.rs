//! What the stages pass along: an [`Entry`] with its labels, line,
//! timestamp, structured metadata and extracted map, and the bookkeeping
//! that ties it back to the journal lines it was made from.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::line::{Seq, Source};

/// Label name under which a `tenant` stage leaves the entry's tenant, as
/// Grafana's client reads it (`__tenant_id__`); it never reaches Loki as a
/// label.
pub const TENANT_LABEL: &str = "__tenant_id__";

/// A label set; shared until a stage changes it.
pub type Labels = Arc<BTreeMap<String, String>>;

/// A value in the extracted map. Grafana's map holds Go values: strings
/// from most stages, and from `json` also numbers (`float64`), booleans
/// and null.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
}

impl Value {
    /// Grafana's `getString`: the value as a label or line would take it;
    /// `None` for null, which has no string form there.
    pub fn to_go_string(&self) -> Option<std::borrow::Cow<'_, str>> {
        use std::borrow::Cow;
        match self {
            Value::String(s) => Some(Cow::Borrowed(s)),
            Value::Number(n) => Some(Cow::Owned(format_float(*n))),
            Value::Bool(true) => Some(Cow::Borrowed("true")),
            Value::Bool(false) => Some(Cow::Borrowed("false")),
            Value::Null => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`: the shortest digits that
/// read back as `f`, never an exponent.
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        // Rust's Display is the shortest round-trip form without exponent.
        format!("{f}")
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_go_string() {
            Some(s) => f.write_str(&s),
            None => f.write_str("<nil>"),
        }
    }
}

/// The extracted map: seeded with the entry's labels before the first
/// stage (shared, not copied), then written by the parsing stages.
#[derive(Debug, Clone, Default)]
pub struct Extracted {
    seed: Arc<BTreeMap<String, Value>>,
    /// Writes over the seed, in order; `None` deletes.
    own: Vec<(String, Option<Value>)>,
}

impl Extracted {
    pub fn seeded(seed: Arc<BTreeMap<String, Value>>) -> Extracted {
        Extracted {
            seed,
            own: Vec::new(),
        }
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        match self.own.iter().rev().find(|(k, _)| k == key) {
            Some((_, value)) => value.as_ref(),
            None => self.seed.get(key),
        }
    }

    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Grafana's `getString(extracted[key])`, `None` when absent or null.
    pub fn get_string(&self, key: &str) -> Option<std::borrow::Cow<'_, str>> {
        self.get(key).and_then(Value::to_go_string)
    }

    pub fn insert(&mut self, key: impl Into<String>, value: Value) {
        let key = key.into();
        match self.own.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = Some(value),
            None => self.own.push((key, Some(value))),
        }
    }

    /// Forgets what the stages wrote (once they are done with the entry).
    pub fn clear(&mut self) {
        self.own = Vec::new();
    }

    pub fn remove(&mut self, key: &str) {
        match self.own.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = None,
            None if self.seed.contains_key(key) => self.own.push((key.to_string(), None)),
            None => {}
        }
    }

    /// Every field, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        let mut all: BTreeMap<&str, &Value> =
            self.seed.iter().map(|(k, v)| (k.as_str(), v)).collect();
        for (k, v) in &self.own {
            match v {
                Some(v) => {
                    all.insert(k, v);
                }
                None => {
                    all.remove(k.as_str());
                }
            }
        }
        all.into_iter()
    }
}

/// Which journal lines an entry stands for, so that delivery can count
/// them and keep the cursor before any it has not finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// The stream the (first) line was read from.
    pub source: Source,
    /// Journal lines in this entry (more than one after `multiline`).
    pub lines: u32,
    /// Per source: the cursor may not pass this while the entry is not
    /// finished (the position just before its first line of that source);
    /// `Seq::MAX` when it holds no line of that source.
    pub hold: [Seq; 2],
}

impl Origin {
    /// One line of `source` that follows the position `before`.
    pub fn line(source: Source, before: Seq) -> Origin {
        let mut hold = [Seq::MAX; 2];
        hold[source as usize] = before;
        Origin {
            source,
            lines: 1,
            hold,
        }
    }

    /// Adds another entry's lines to these (a multiline block).
    pub fn absorb(&mut self, other: &Origin) {
        self.lines = self.lines.saturating_add(other.lines);
        for s in 0..2 {
            self.hold[s] = self.hold[s].min(other.hold[s]);
        }
    }
}

/// An entry on its way through the stages.
#[derive(Debug, Clone)]
pub struct Entry {
    pub labels: Labels,
    pub extracted: Extracted,
    pub line: String,
    /// Nanoseconds since the Unix epoch.
    pub timestamp: i64,
    /// Loki 3 structured metadata set by stages, in the order set.
    pub metadata: Vec<(String, String)>,
    pub origin: Origin,
}

impl Entry {
    /// Changes the labels (copying them first if they are shared).
    pub fn labels_mut(&mut self) -> &mut BTreeMap<String, String> {
        Arc::make_mut(&mut self.labels)
    }

    pub fn set_label(&mut self, name: &str, value: &str) {
        if self.labels.get(name).map(String::as_str) != Some(value) {
            self.labels_mut()
                .insert(name.to_string(), value.to_string());
        }
    }

    pub fn remove_label(&mut self, name: &str) {
        if self.labels.contains_key(name) {
            self.labels_mut().remove(name);
        }
    }

    /// The tenant a `tenant` stage chose, if any.
    pub fn tenant(&self) -> Option<&str> {
        self.labels.get(TENANT_LABEL).map(String::as_str)
    }
}

/// How label sets changed: entries that make the same change to the same
/// shared label set get the same shared result, so a `labels` stage that
/// sets `level` on a million lines makes four label sets, not a million
/// copies (and delivery renders each set once).
#[derive(Debug, Clone, Default)]
pub struct Transitions {
    cache: HashMap<u64, Vec<Transition>>,
    len: usize,
}

#[derive(Debug, Clone)]
struct Transition {
    /// Kept, so that its address is not reused while it is a key.
    from: Labels,
    key: Vec<Option<String>>,
    to: Labels,
}

impl Transitions {
    /// Remembered changes at most; then it starts again.
    const MAX: usize = 1024;

    /// Applies `change` to `labels`; `key` is everything the change depends
    /// on besides the labels themselves (the values it sets).
    pub fn apply(
        &mut self,
        labels: &mut Labels,
        key: &[Option<&str>],
        change: impl FnOnce(&mut BTreeMap<String, String>),
    ) {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (Arc::as_ptr(labels) as usize).hash(&mut hasher);
        key.hash(&mut hasher);
        let hash = hasher.finish();
        if let Some(list) = self.cache.get(&hash) {
            for t in list {
                if Arc::ptr_eq(&t.from, labels)
                    && t.key.len() == key.len()
                    && t.key.iter().zip(key).all(|(a, b)| a.as_deref() == *b)
                {
                    *labels = t.to.clone();
                    return;
                }
            }
        }
        let mut changed = (**labels).clone();
        change(&mut changed);
        let to = if changed == **labels {
            labels.clone()
        } else {
            Arc::new(changed)
        };
        if self.len >= Self::MAX {
            self.cache.clear();
            self.len = 0;
        }
        self.cache.entry(hash).or_default().push(Transition {
            from: labels.clone(),
            key: key.iter().map(|k| k.map(str::to_string)).collect(),
            to: to.clone(),
        });
        self.len += 1;
        *labels = to;
    }
}

/// True for a valid label name by Loki's (Prometheus' legacy) rules:
/// `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The extracted-map seed for a label set: each label as a string field.
pub fn seed_of(labels: &BTreeMap<String, String>) -> Arc<BTreeMap<String, Value>> {
    Arc::new(
        labels
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_as_go_prints_float64() {
        assert_eq!(format_float(42.0), "42");
        assert_eq!(format_float(0.1), "0.1");
        assert_eq!(format_float(1e21), "1000000000000000000000");
        assert_eq!(format_float(-2.5), "-2.5");
        assert_eq!(format_float(1.2345678901234567e19), "12345678901234567000");
    }

    #[test]
    fn the_extracted_map_reads_through_to_its_seed() {
        let seed = seed_of(&[("app".to_string(), "web".to_string())].into());
        let mut x = Extracted::seeded(seed);
        assert_eq!(x.get_string("app").as_deref(), Some("web"));
        x.insert("level", Value::String("info".into()));
        x.insert("app", Value::Number(1.0));
        assert_eq!(x.get_string("app").as_deref(), Some("1"));
        x.remove("app");
        assert!(!x.contains("app"));
        let keys: Vec<&str> = x.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["level"]);
    }
}
