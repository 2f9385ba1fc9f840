//! Server-side apply and field ownership (`metadata.managedFields`), modelled on upstream's
//! structured-merge-diff `Updater` and the apiserver's field-manager chain.
//!
//! Field sets are flat sets of paths ([`Path`]); `FieldsV1` is their trie encoding. The pieces:
//! `to_field_set` (which fields an object sets), `compare` (added/modified/removed between two
//! objects), `merge_values` (the applied configuration over the live object), then
//! [`server_side_apply`] = merge, own what was applied, prune what this manager stopped
//! applying, check conflicts against other managers; [`record_update_with`] = own what a plain
//! write changed.
//!
//! Over 800 lines on purpose: merge, ownership, prune and conflict detection are one algorithm
//! (upstream's structured-merge-diff `merge`/`fieldpath` and the field manager); split, the
//! invariants between them would cross files.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::PatchError;
use super::schema::{Schema, Ssa, has_status_subresource};
use super::smp::LAST_APPLIED_ANNOTATION as LAST_APPLIED;

/// One field-ownership conflict of a server-side apply: another manager owns a field whose
/// value the apply would change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldConflict {
    /// The conflicting manager as upstream prints it: `"kubectl-client-side-apply" using apps/v1`.
    pub manager: String,
    /// The field path as upstream prints it: `.spec.replicas`,
    /// `.spec.template.spec.containers[name="web"].image`.
    pub field: String,
}

/// Upstream's conflict message (`Apply failed with 1 conflict: conflict with …: .spec.replicas`).
pub(crate) fn conflict_message(conflicts: &[FieldConflict]) -> String {
    if let [c] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            c.manager, c.field
        );
    }
    let mut managers: Vec<&str> = conflicts.iter().map(|c| c.manager.as_str()).collect();
    managers.sort_unstable();
    managers.dedup();
    let mut lines = Vec::new();
    for m in managers {
        lines.push(format!("conflicts with {m}:"));
        for c in conflicts.iter().filter(|c| c.manager == m) {
            lines.push(format!("- {}", c.field));
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// The field manager name upstream derives when a request has no `fieldManager`: the
/// User-Agent up to its first `/` (`kubectl/v1.32.4 (linux/amd64)…` → `kubectl`), at most 128
/// characters.
pub fn manager_from_user_agent(user_agent: &str) -> String {
    let prefix = user_agent.split('/').next().unwrap_or("");
    prefix.chars().take(128).collect()
}

// ---------------------------------------------------------------------------------------------
// Paths and sets
// ---------------------------------------------------------------------------------------------

/// One step of a field path.
#[derive(Clone, Debug)]
enum PathElement {
    /// A struct field or map key (`f:<name>`).
    Field(String),
    /// An item of an associative list, by its key fields sorted by name (`k:{…}`).
    Key(Vec<(String, Value)>),
    /// An item of a set (`v:<json>`).
    Value(Value),
    /// An item of an atomic list by position (`i:<n>`); only decoded, never produced.
    Index(u64),
}

fn type_rank(v: &Value) -> u8 {
    match v {
        Value::Number(_) => 0,
        Value::String(_) => 1,
        Value::Bool(_) => 2,
        Value::Array(_) => 3,
        Value::Object(_) => 4,
        Value::Null => 5,
    }
}

/// A total order on JSON values (numbers numerically, strings lexically, then by type).
fn value_cmp(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (i, j) in x.iter().zip(y) {
                let c = value_cmp(i, j);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut xs: Vec<(&String, &Value)> = x.iter().collect();
            let mut ys: Vec<(&String, &Value)> = y.iter().collect();
            xs.sort_by(|p, q| p.0.cmp(q.0));
            ys.sort_by(|p, q| p.0.cmp(q.0));
            for ((ka, va), (kb, vb)) in xs.iter().zip(&ys) {
                let c = ka.cmp(kb).then_with(|| value_cmp(va, vb));
                if c != Ordering::Equal {
                    return c;
                }
            }
            xs.len().cmp(&ys.len())
        }
        _ => type_rank(a).cmp(&type_rank(b)),
    }
}

impl PathElement {
    fn rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }

    /// The `FieldsV1` key.
    fn encode(&self) -> String {
        match self {
            PathElement::Field(f) => format!("f:{f}"),
            PathElement::Key(kv) => {
                let m: Map<String, Value> = kv.iter().cloned().collect();
                format!("k:{}", Value::Object(m))
            }
            PathElement::Value(v) => format!("v:{v}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    fn decode(s: &str) -> Option<PathElement> {
        let (kind, rest) = s.split_at_checked(2)?;
        match kind {
            "f:" => Some(PathElement::Field(rest.to_string())),
            "k:" => match serde_json::from_str::<Value>(rest).ok()? {
                Value::Object(m) => {
                    let mut kv: Vec<(String, Value)> = m.into_iter().collect();
                    kv.sort_by(|a, b| a.0.cmp(&b.0));
                    Some(PathElement::Key(kv))
                }
                _ => None,
            },
            "v:" => serde_json::from_str(rest).ok().map(PathElement::Value),
            "i:" => rest.parse().ok().map(PathElement::Index),
            _ => None,
        }
    }

    /// Upstream's display form, used in conflict messages.
    fn display(&self) -> String {
        match self {
            PathElement::Field(f) => format!(".{f}"),
            PathElement::Key(kv) => {
                let parts: Vec<String> = kv.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("[{}]", parts.join(","))
            }
            PathElement::Value(v) => format!("[={v}]"),
            PathElement::Index(i) => format!("[{i}]"),
        }
    }

    /// Whether `item` (a list element) is the one this element names.
    fn matches_item(&self, item: &Value) -> bool {
        match self {
            PathElement::Key(kv) => kv
                .iter()
                .all(|(k, v)| key_value(item, k).as_ref() == Some(v)),
            PathElement::Value(v) => item == v,
            _ => false,
        }
    }
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => a.len().cmp(&b.len()).then_with(|| {
                for ((ka, va), (kb, vb)) in a.iter().zip(b) {
                    let c = ka.cmp(kb).then_with(|| value_cmp(va, vb));
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                Ordering::Equal
            }),
            (PathElement::Value(a), PathElement::Value(b)) => value_cmp(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

type Path = Vec<PathElement>;
type FieldSet = BTreeSet<Path>;

fn display_path(p: &[PathElement]) -> String {
    p.iter().map(PathElement::display).collect()
}

fn field_path(parts: &[&str]) -> Path {
    parts
        .iter()
        .map(|p| PathElement::Field((*p).to_string()))
        .collect()
}

/// Paths no manager ever owns (upstream's strip-meta set).
fn stripped() -> FieldSet {
    let mut s: FieldSet = [
        field_path(&["apiVersion"]),
        field_path(&["kind"]),
        field_path(&["metadata"]),
    ]
    .into_iter()
    .collect();
    for f in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        s.insert(field_path(&["metadata", f]));
    }
    s
}

/// `s` without `ignored` paths and everything below them (upstream `RecursiveDifference`).
fn recursive_difference(s: &FieldSet, ignored: &[Path]) -> FieldSet {
    s.iter()
        .filter(|p| !ignored.iter().any(|i| p.starts_with(i)))
        .cloned()
        .collect()
}

/// `s` plus every prefix ending in a field name (upstream `EnsureNamedFieldsAreMembers`, with
/// every object key treated as a field).
fn ensure_named(s: &FieldSet) -> FieldSet {
    let mut out = s.clone();
    for p in s {
        for i in 1..p.len() {
            if matches!(p[i - 1], PathElement::Field(_)) {
                out.insert(p[..i].to_vec());
            }
        }
    }
    out
}

/// Decode `FieldsV1` into a set.
fn decode_fields(v: &Value) -> Option<FieldSet> {
    fn walk(v: &Value, path: &mut Path, out: &mut FieldSet) -> Option<()> {
        let Value::Object(m) = v else { return None };
        if m.is_empty() && !path.is_empty() {
            out.insert(path.clone());
        }
        for (k, child) in m {
            if k == "." {
                out.insert(path.clone());
                continue;
            }
            path.push(PathElement::decode(k)?);
            walk(child, path, out)?;
            path.pop();
        }
        Some(())
    }
    let mut out = FieldSet::new();
    walk(v, &mut Vec::new(), &mut out)?;
    out.remove(&Vec::new());
    Some(out)
}

/// Encode a set as `FieldsV1` (children sorted like upstream, `.` marks a member with children).
fn encode_fields(s: &FieldSet) -> Value {
    #[derive(Default)]
    struct Node {
        member: bool,
        children: BTreeMap<PathElement, Node>,
    }
    fn emit(n: &Node) -> Value {
        let mut m = Map::new();
        if n.member && !n.children.is_empty() {
            m.insert(".".to_string(), Value::Object(Map::new()));
        }
        for (pe, child) in &n.children {
            m.insert(pe.encode(), emit(child));
        }
        Value::Object(m)
    }
    let mut root = Node::default();
    for p in s {
        let mut n = &mut root;
        for pe in p {
            n = n.children.entry(pe.clone()).or_default();
        }
        n.member = true;
    }
    emit(&root)
}

// ---------------------------------------------------------------------------------------------
// Walking objects with the schema
// ---------------------------------------------------------------------------------------------

/// How a node of an object is treated.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// Owned and compared as a whole.
    Leaf,
    /// Fields owned one by one.
    Map(Schema),
    /// Associative list: items by key (owned field by field, or whole when `atomic`).
    ListMap(&'static [&'static str], Schema, bool),
    /// Set: items by value.
    Set,
}

fn shape(value: &Value, ssa: Ssa, schema: Schema) -> Shape {
    match (value, ssa) {
        (_, Ssa::AtomicMap) => Shape::Leaf,
        (Value::Object(_), _) => Shape::Map(schema),
        (Value::Array(_), Ssa::Map(keys)) if !keys.is_empty() => {
            Shape::ListMap(keys, schema, false)
        }
        (Value::Array(_), Ssa::MapAtomic(keys)) if !keys.is_empty() => {
            Shape::ListMap(keys, schema, true)
        }
        (Value::Array(_), Ssa::Set) => Shape::Set,
        _ => Shape::Leaf,
    }
}

/// A key field of a list item; `protocol` defaults to `TCP` like the schema default upstream
/// uses for missing keys.
fn key_value(item: &Value, key: &str) -> Option<Value> {
    match item.get(key) {
        Some(v) => Some(v.clone()),
        None if key == "protocol" => Some(Value::String("TCP".to_string())),
        None => None,
    }
}

/// Why an object could not be typed against the schema (upstream's typed-value errors).
type TypeError = String;

fn item_element(
    item: &Value,
    shape: Shape,
    path: &[PathElement],
    i: usize,
) -> Result<PathElement, TypeError> {
    match shape {
        Shape::ListMap(keys, ..) => {
            let mut kv = Vec::with_capacity(keys.len());
            for k in keys {
                let v = key_value(item, k).ok_or_else(|| {
                    format!(
                        "{}: element {i}: associative list with keys has an element that omits key field {k:?} (and doesn't have default value)",
                        display_path(path)
                    )
                })?;
                kv.push(((*k).to_string(), v));
            }
            kv.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(PathElement::Key(kv))
        }
        _ => Ok(PathElement::Value(item.clone())),
    }
}

/// The fields `value` (an object of `schema`) sets. Upstream `ToFieldSet`; `strict` refuses
/// duplicate list items like upstream's typing of an apply configuration does.
fn to_field_set(value: &Value, schema: Schema, strict: bool) -> Result<FieldSet, TypeError> {
    fn node(
        v: &Value,
        node_shape: Shape,
        path: &mut Path,
        out: &mut FieldSet,
        strict: bool,
    ) -> Result<(), TypeError> {
        match (node_shape, v) {
            (Shape::Map(schema), Value::Object(m)) => {
                for (k, child) in m {
                    path.push(PathElement::Field(k.clone()));
                    let meta = schema.field(k);
                    let empty_map = matches!(child, Value::Object(c) if c.is_empty());
                    if child.is_null() || empty_map {
                        out.insert(path.clone());
                    } else {
                        node(
                            child,
                            shape(child, meta.ssa, meta.schema),
                            path,
                            out,
                            strict,
                        )?;
                    }
                    path.pop();
                }
            }
            (Shape::ListMap(_, schema, atomic), Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let pe = item_element(item, node_shape, path, i)?;
                    path.push(pe);
                    if !out.insert(path.clone()) && strict {
                        let pe = path.pop().map(|pe| pe.display()).unwrap_or_default();
                        return Err(format!(
                            "{}: duplicate entries for key {pe}",
                            display_path(path)
                        ));
                    }
                    if item.is_object() && !atomic {
                        node(item, Shape::Map(schema), path, out, strict)?;
                    }
                    path.pop();
                }
            }
            (Shape::Set, Value::Array(items)) => {
                for item in items {
                    path.push(PathElement::Value(item.clone()));
                    if !out.insert(path.clone()) && strict {
                        return Err(format!(
                            "{}: duplicate entries for value {item}",
                            display_path(&path[..path.len() - 1])
                        ));
                    }
                    path.pop();
                }
            }
            _ => {
                out.insert(path.clone());
            }
        }
        Ok(())
    }
    let mut out = FieldSet::new();
    node(value, Shape::Map(schema), &mut Vec::new(), &mut out, strict)?;
    out.remove(&Vec::new());
    Ok(out)
}

/// What changed from `lhs` to `rhs`. Upstream `TypedValue.Compare`.
#[derive(Debug, Default)]
struct Comparison {
    added: FieldSet,
    modified: FieldSet,
    removed: FieldSet,
}

fn compare(lhs: &Value, rhs: &Value, schema: Schema) -> Result<Comparison, TypeError> {
    let mut c = Comparison::default();
    walk_compare(
        Some(lhs),
        Some(rhs),
        Ssa::Default,
        schema,
        &mut Vec::new(),
        &mut c,
    )?;
    c.added.remove(&Vec::new());
    c.modified.remove(&Vec::new());
    c.removed.remove(&Vec::new());
    Ok(c)
}

fn walk_compare(
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    ssa: Ssa,
    schema: Schema,
    path: &mut Path,
    c: &mut Comparison,
) -> Result<(), TypeError> {
    // A null on one side is a wildcard taking the other side's shape (upstream deduceAtom).
    let Some(any) = [lhs, rhs]
        .into_iter()
        .flatten()
        .find(|v| !v.is_null())
        .or(lhs.or(rhs))
    else {
        return Ok(());
    };
    let same_kind = match (lhs.filter(|v| !v.is_null()), rhs.filter(|v| !v.is_null())) {
        (Some(l), Some(r)) => {
            std::mem::discriminant(&shape(l, ssa, schema))
                == std::mem::discriminant(&shape(r, ssa, schema))
        }
        _ => true,
    };
    let node_shape = if same_kind {
        shape(any, ssa, schema)
    } else {
        Shape::Leaf
    };
    match node_shape {
        Shape::Leaf => {
            match (lhs, rhs) {
                (None, Some(_)) => c.added.insert(path.clone()),
                (Some(_), None) => c.removed.insert(path.clone()),
                (Some(l), Some(r)) if l != r => c.modified.insert(path.clone()),
                _ => false,
            };
            return Ok(());
        }
        Shape::Map(schema) => {
            let empty = Map::new();
            let lm = lhs.and_then(Value::as_object).unwrap_or(&empty);
            let rm = rhs.and_then(Value::as_object).unwrap_or(&empty);
            let keys: BTreeSet<&String> = lm.keys().chain(rm.keys()).collect();
            for k in keys {
                let meta = schema.field(k);
                path.push(PathElement::Field(k.clone()));
                walk_compare(lm.get(k), rm.get(k), meta.ssa, meta.schema, path, c)?;
                path.pop();
            }
        }
        Shape::ListMap(_, elem, atomic) => {
            let item_ssa = if atomic { Ssa::AtomicMap } else { Ssa::Default };
            compare_items(lhs, rhs, node_shape, item_ssa, elem, path, c)?
        }
        Shape::Set => compare_items(
            lhs,
            rhs,
            node_shape,
            Ssa::AtomicMap,
            Schema::default(),
            path,
            c,
        )?,
    }
    match (lhs, rhs) {
        (None, Some(_)) => c.added.insert(path.clone()),
        (Some(_), None) => c.removed.insert(path.clone()),
        _ => false,
    };
    Ok(())
}

/// Compare the items of two associative lists or sets, pairing them by key or value.
fn compare_items(
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    list_shape: Shape,
    item_ssa: Ssa,
    elem: Schema,
    path: &mut Path,
    c: &mut Comparison,
) -> Result<(), TypeError> {
    let empty = Vec::new();
    let la = lhs.and_then(Value::as_array).unwrap_or(&empty);
    let ra = rhs.and_then(Value::as_array).unwrap_or(&empty);
    let li = index_items(la, list_shape, path)?;
    let ri = index_items(ra, list_shape, path)?;
    let pes: BTreeSet<&PathElement> = li.keys().chain(ri.keys()).collect();
    for pe in pes {
        path.push(pe.clone());
        walk_compare(
            li.get(pe).copied(),
            ri.get(pe).copied(),
            item_ssa,
            elem,
            path,
            c,
        )?;
        path.pop();
    }
    Ok(())
}

fn index_items<'a>(
    items: &'a [Value],
    shape: Shape,
    path: &[PathElement],
) -> Result<BTreeMap<PathElement, &'a Value>, TypeError> {
    let mut out = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        // The first of duplicate items wins, like upstream's observed-item index.
        out.entry(item_element(item, shape, path, i)?)
            .or_insert(item);
    }
    Ok(out)
}

/// The applied configuration `rhs` merged over the live object `lhs` (upstream `Merge` with
/// "keep RHS"): maps field by field, associative lists and sets item by item, the rest
/// replaced. A `null` in the configuration removes the field.
fn merge_values(
    lhs: &Value,
    rhs: &Value,
    ssa: Ssa,
    schema: Schema,
    path: &mut Path,
) -> Result<Option<Value>, TypeError> {
    if rhs.is_null() {
        return Ok(None);
    }
    let ls = shape(lhs, ssa, schema);
    let rs = shape(rhs, ssa, schema);
    match (ls, rs, lhs, rhs) {
        (Shape::Map(_), Shape::Map(schema), Value::Object(lm), Value::Object(rm)) => {
            let mut out = lm.clone();
            for (k, rv) in rm {
                let meta = schema.field(k);
                path.push(PathElement::Field(k.clone()));
                let merged = match lm.get(k) {
                    Some(lv) => merge_values(lv, rv, meta.ssa, meta.schema, path)?,
                    None => merge_values(&Value::Null, rv, meta.ssa, meta.schema, path)?,
                };
                path.pop();
                match merged {
                    Some(v) => {
                        out.insert(k.clone(), v);
                    }
                    None => {
                        out.shift_remove(k);
                    }
                }
            }
            Ok(Some(Value::Object(out)))
        }
        (Shape::ListMap(..), Shape::ListMap(_, elem, _), Value::Array(la), Value::Array(ra)) => {
            merge_list(la, ra, rs, elem, path).map(|v| Some(Value::Array(v)))
        }
        (Shape::Set, Shape::Set, Value::Array(la), Value::Array(ra)) => {
            merge_list(la, ra, rs, Schema::default(), path).map(|v| Some(Value::Array(v)))
        }
        _ => Ok(Some(strip_nulls(rhs.clone()))),
    }
}

/// Remove null-valued keys at any depth (a null in an apply configuration means "absent").
fn strip_nulls(mut v: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.retain(|_, c| !c.is_null());
                m.values_mut().for_each(walk);
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

/// Merge two lists item by item, keeping the applied order for shared items and slotting
/// live-only items where they were (upstream `visitListItems`).
fn merge_list(
    lhs: &[Value],
    rhs: &[Value],
    shape: Shape,
    elem: Schema,
    path: &mut Path,
) -> Result<Vec<Value>, TypeError> {
    let lpes: Vec<PathElement> = lhs
        .iter()
        .enumerate()
        .map(|(i, v)| item_element(v, shape, path, i))
        .collect::<Result<_, _>>()?;
    let rpes: Vec<PathElement> = rhs
        .iter()
        .enumerate()
        .map(|(i, v)| item_element(v, shape, path, i))
        .collect::<Result<_, _>>()?;
    let observed_l = index_items(lhs, shape, path)?;
    let observed_r = index_items(rhs, shape, path)?;
    let mut shared: std::collections::VecDeque<&PathElement> = rpes
        .iter()
        .filter(|pe| observed_l.contains_key(*pe))
        .collect();
    let mut next_shared = shared.pop_front();
    let mut merged_rhs: BTreeSet<PathElement> = BTreeSet::new();
    let mut out = Vec::with_capacity(lhs.len().max(rhs.len()));
    let (mut li, mut ri) = (0, 0);
    let item_ssa = if matches!(shape, Shape::Set | Shape::ListMap(_, _, true)) {
        Ssa::AtomicMap
    } else {
        Ssa::Default
    };

    let merge_item = |pe: &PathElement,
                      l: Option<&Value>,
                      r: Option<&Value>,
                      path: &mut Path|
     -> Result<Option<Value>, TypeError> {
        path.push(pe.clone());
        let out = match (l, r) {
            (Some(l), Some(r)) => merge_values(l, r, item_ssa, elem, path),
            (Some(l), None) => Ok(Some(l.clone())),
            (None, Some(r)) => merge_values(&Value::Null, r, item_ssa, elem, path),
            (None, None) => Ok(None),
        };
        path.pop();
        out
    };

    let merge_observed = |pe: &PathElement, path: &mut Path| {
        merge_item(
            pe,
            observed_l.get(pe).copied(),
            observed_r.get(pe).copied(),
            path,
        )
    };

    while li < lpes.len() || ri < rpes.len() {
        // Every round consumes an item; the guard keeps a malformed input from spinning.
        let before = (li, ri);
        if li < lpes.len() && ri < rpes.len() {
            let pe = &lpes[li];
            if *pe == rpes[ri] {
                merged_rhs.insert(pe.clone());
                let v = merge_observed(pe, path)?;
                out.extend(v);
                li += 1;
                ri += 1;
                next_shared = shared.pop_front();
                continue;
            }
            if observed_r.contains_key(pe) && next_shared.is_some_and(|n| n != pe) {
                li += 1;
                continue;
            }
        }
        if li < lpes.len() {
            let pe = &lpes[li];
            if !observed_r.contains_key(pe) {
                let v = merge_item(pe, Some(&lhs[li]), None, path)?;
                out.extend(v);
                li += 1;
                continue;
            } else if merged_rhs.contains(pe) {
                li += 1;
                continue;
            }
        }
        if ri < rpes.len() {
            let pe = &rpes[ri];
            merged_rhs.insert(pe.clone());
            let v = merge_observed(pe, path)?;
            out.extend(v);
            ri += 1;
            if next_shared.is_some_and(|n| n == pe) {
                next_shared = shared.pop_front();
            }
        }
        if (li, ri) == before {
            li += 1;
        }
    }
    Ok(out)
}

/// Remove the node at `path` from `v` (and everything below it).
fn remove_path(v: &mut Value, path: &[PathElement]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    match (first, v) {
        (PathElement::Field(f), Value::Object(m)) => {
            if rest.is_empty() {
                m.shift_remove(f);
            } else if let Some(child) = m.get_mut(f) {
                remove_path(child, rest);
            }
        }
        (PathElement::Key(_) | PathElement::Value(_), Value::Array(items)) => {
            if rest.is_empty() {
                items.retain(|item| !first.matches_item(item));
            } else if let Some(child) = items.iter_mut().find(|item| first.matches_item(item)) {
                remove_path(child, rest);
            }
        }
        (PathElement::Index(i), Value::Array(items)) => {
            let i = usize::try_from(*i).unwrap_or(usize::MAX);
            if rest.is_empty() {
                if i < items.len() {
                    items.remove(i);
                }
            } else if let Some(child) = items.get_mut(i) {
                remove_path(child, rest);
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Managers
// ---------------------------------------------------------------------------------------------

/// One `managedFields` entry.
#[derive(Clone, Debug)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: Option<String>,
    subresource: String,
    fields: FieldSet,
}

impl Entry {
    /// Upstream's manager identity: Apply entries ignore the API version.
    fn same_identity(
        &self,
        manager: &str,
        operation: &str,
        api_version: &str,
        subresource: &str,
    ) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource == subresource
            && (operation == "Apply" || self.api_version == api_version)
    }

    /// How conflict messages name this manager (upstream `printManager`, without the time
    /// because identities carry none).
    fn printed(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s = format!("{s} with subresource {:?}", self.subresource);
        }
        if self.operation == "Update" {
            s = format!("{s} using {}", self.api_version);
        }
        s
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), Value::String(self.manager.clone()));
        m.insert("operation".into(), Value::String(self.operation.clone()));
        m.insert("apiVersion".into(), Value::String(self.api_version.clone()));
        if let Some(t) = &self.time {
            m.insert("time".into(), Value::String(t.clone()));
        }
        m.insert("fieldsType".into(), Value::String("FieldsV1".into()));
        m.insert("fieldsV1".into(), encode_fields(&self.fields));
        if !self.subresource.is_empty() {
            m.insert(
                "subresource".into(),
                Value::String(self.subresource.clone()),
            );
        }
        Value::Object(m)
    }
}

/// Decoded `managedFields`: `None` when absent or undecodable, `Some(empty)` for the reset
/// forms `[]` and `[{}]`.
fn decode_managers(obj: &Value) -> Option<Vec<Entry>> {
    let list = obj.get("metadata")?.get("managedFields")?.as_array()?;
    if list.len() == 1 && list[0].as_object().is_some_and(Map::is_empty) {
        return Some(Vec::new());
    }
    let mut out = Vec::with_capacity(list.len());
    for e in list {
        let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let fields = match e.get("fieldsV1") {
            Some(f) => decode_fields(f)?,
            None => FieldSet::new(),
        };
        out.push(Entry {
            manager: s("manager"),
            operation: s("operation"),
            api_version: s("apiVersion"),
            time: e.get("time").and_then(Value::as_str).map(str::to_string),
            subresource: s("subresource"),
            fields,
        });
    }
    Some(out)
}

/// Store `managers` in `obj`, sorted like upstream (Apply before Update, then by time, manager,
/// API version, subresource); empty entries are dropped, no entries removes the field.
fn write_managers(obj: &mut Value, mut managers: Vec<Entry>) {
    managers.retain(|e| !e.fields.is_empty());
    cap_update_managers(&mut managers);
    managers.sort_by(|a, b| {
        a.operation
            .cmp(&b.operation)
            .then_with(|| {
                a.time
                    .as_deref()
                    .unwrap_or("")
                    .cmp(b.time.as_deref().unwrap_or(""))
            })
            .then_with(|| a.manager.cmp(&b.manager))
            .then_with(|| a.api_version.cmp(&b.api_version))
            .then_with(|| a.subresource.cmp(&b.subresource))
    });
    let Some(obj) = obj.as_object_mut() else {
        return;
    };
    let meta = obj
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    if managers.is_empty() {
        meta.shift_remove("managedFields");
    } else {
        meta.insert(
            "managedFields".into(),
            Value::Array(managers.iter().map(Entry::to_json).collect()),
        );
    }
}

/// Upstream keeps at most this many Update entries; older ones merge into `ancient-changes`.
const MAX_UPDATE_MANAGERS: usize = 10;

/// Merge the oldest Update entries, per API version, into an `ancient-changes` entry until at
/// most [`MAX_UPDATE_MANAGERS`] remain (upstream `capManagersManager`).
fn cap_update_managers(managers: &mut Vec<Entry>) {
    let mut updaters: Vec<usize> = (0..managers.len())
        .filter(|&i| managers[i].operation != "Apply")
        .collect();
    if updaters.len() <= MAX_UPDATE_MANAGERS {
        return;
    }
    // Oldest first (by second), then by name.
    let seconds = |e: &Entry| {
        e.time
            .as_deref()
            .map(|t| t.get(..19).unwrap_or(t).to_string())
            .unwrap_or_default()
    };
    updaters.sort_by(|&a, &b| {
        seconds(&managers[a])
            .cmp(&seconds(&managers[b]))
            .then_with(|| managers[a].manager.cmp(&managers[b].manager))
    });
    let mut remaining = updaters.len();
    let mut first_of_version: BTreeMap<String, usize> = BTreeMap::new();
    let mut merged_away = BTreeSet::new();
    for &i in &updaters {
        if remaining <= MAX_UPDATE_MANAGERS {
            break;
        }
        let version = managers[i].api_version.clone();
        match first_of_version.get(&version) {
            None => {
                first_of_version.insert(version, i);
            }
            Some(&bucket) => {
                let fields = std::mem::take(&mut managers[i].fields);
                let time = managers[i].time.clone();
                let b = &mut managers[bucket];
                b.manager = "ancient-changes".into();
                b.subresource.clear();
                b.fields.extend(fields);
                b.time = time;
                merged_away.insert(i);
                remaining -= 1;
            }
        }
    }
    let mut i = 0;
    managers.retain(|_| {
        let keep = !merged_away.contains(&i);
        i += 1;
        keep
    });
}

fn without_managed_fields(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.shift_remove("managedFields");
    }
    o
}

fn api_version_of(obj: &Value) -> String {
    obj.get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// Paths outside this write's ownership: status on main-resource writes of kinds with a status
/// subresource, spec on status writes.
fn ignored_paths(kind: &str, subresource: &str) -> Vec<Path> {
    match subresource {
        "status" => vec![field_path(&["spec"])],
        _ if has_status_subresource(kind) => vec![field_path(&["status"])],
        _ => Vec::new(),
    }
}

fn owned_set(s: &FieldSet, ignored: &[Path]) -> FieldSet {
    let strip = stripped();
    recursive_difference(s, ignored)
        .into_iter()
        .filter(|p| !strip.contains(p))
        .collect()
}

/// Take changed and removed fields away from every manager but `except` (forced ownership
/// transfer, upstream `update` with force).
fn take_from_others(managers: &mut [Entry], except: Option<usize>, cmp: &Comparison) {
    for (i, e) in managers.iter_mut().enumerate() {
        if Some(i) == except {
            continue;
        }
        e.fields.retain(|p| {
            !cmp.modified.contains(p) && !cmp.added.contains(p) && !cmp.removed.contains(p)
        });
    }
}

/// The structure of upstream's zero-valued object of `kind` as the field manager sees it on
/// create (non-pointer structs present, nil slices as null): fields already "present" there
/// are changed, not added, by a create, which decides where `FieldsV1` gets `.` markers.
fn zero_object(kind: &str) -> Value {
    let template = || serde_json::json!({"metadata": {"creationTimestamp": null}, "spec": {"containers": null}});
    let meta = serde_json::json!({"creationTimestamp": null});
    let mut zero = match kind {
        "Pod" => serde_json::json!({"spec": {"containers": null}, "status": {}}),
        "PodTemplate" => serde_json::json!({"template": template()}),
        "Deployment" => serde_json::json!({
            "spec": {"selector": null, "template": template(), "strategy": {}},
            "status": {}
        }),
        "ReplicaSet" => {
            serde_json::json!({"spec": {"selector": null, "template": template()}, "status": {}})
        }
        "StatefulSet" => serde_json::json!({
            "spec": {"selector": null, "template": template(), "updateStrategy": {}},
            "status": {}
        }),
        "DaemonSet" => serde_json::json!({
            "spec": {"selector": null, "template": template(), "updateStrategy": {}},
            "status": {}
        }),
        "Job" => serde_json::json!({"spec": {"template": template()}, "status": {}}),
        "CronJob" => serde_json::json!({
            "spec": {"jobTemplate": {"metadata": {"creationTimestamp": null}, "spec": {"template": template()}}},
            "status": {}
        }),
        "Service" => serde_json::json!({"spec": {}, "status": {"loadBalancer": {}}}),
        "Namespace" | "Lease" => serde_json::json!({"spec": {}, "status": {}}),
        "Node" => {
            serde_json::json!({"spec": {}, "status": {"daemonEndpoints": {"kubeletEndpoint": {}}, "nodeInfo": {}}})
        }
        "PersistentVolumeClaim" => serde_json::json!({"spec": {"resources": {}}, "status": {}}),
        "EndpointSlice" => serde_json::json!({"endpoints": null}),
        "Event" => serde_json::json!({"involvedObject": {}, "source": {}}),
        "CertificateSigningRequest" => serde_json::json!({"spec": {"request": null}, "status": {}}),
        _ => serde_json::json!({}),
    };
    if kind == "Lease"
        && let Some(m) = zero.as_object_mut()
    {
        m.shift_remove("status");
    }
    if let Some(m) = zero.as_object_mut() {
        m.insert("metadata".into(), meta);
    }
    zero
}

/// Server-side apply: `applied` (the decoded `application/apply-patch+yaml` body) over `live`
/// (`None` when the object does not exist yet: the result is then the object to create).
///
/// Like upstream: fields of the configuration are merged over the live object (associative
/// lists and sets item by item); `manager`'s Apply entry in `metadata.managedFields` becomes
/// exactly the applied fields; fields `manager` applied before and omits now are removed unless
/// another manager owns them; fields owned by other managers whose value would change are
/// [`PatchError::ApplyConflict`] unless `force` (then ownership moves). For manager `kubectl`,
/// conflicts on fields still matching the `last-applied-configuration` annotation are allowed
/// (the client-side → server-side upgrade path) and that annotation is kept in sync.
/// Status is not applied for kinds with a status subresource. `now` is the RFC 3339 time
/// recorded in the entry.
pub fn server_side_apply(
    live: Option<&Value>,
    applied: &Value,
    kind: &str,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Value, PatchError> {
    let Value::Object(config_map) = applied else {
        return Err(PatchError::InvalidApply(
            "error decoding YAML: the apply configuration must be an object".into(),
        ));
    };
    if config_map
        .get("metadata")
        .and_then(|m| m.get("managedFields"))
        .is_some_and(|f| !f.is_null())
    {
        return Err(PatchError::InvalidApply(
            "metadata.managedFields must be nil".into(),
        ));
    }
    let applied_kind = config_map.get("kind").and_then(Value::as_str).unwrap_or("");
    let applied_version = api_version_of(applied);
    let live_version = live.map(api_version_of).unwrap_or_default();
    if applied_kind != kind
        || applied_version.is_empty()
        || (!live_version.is_empty() && applied_version != live_version)
    {
        let (group, version) = split_api_version(&applied_version);
        return Err(PatchError::InvalidApply(format!(
            "invalid object type: {group}/{version}, Kind={applied_kind}"
        )));
    }
    let schema = Schema::for_kind(kind).unwrap_or_else(Schema::generic);
    let ignored = ignored_paths(kind, "");

    let mut config = applied.clone();
    if has_status_subresource(kind)
        && let Some(m) = config.as_object_mut()
    {
        m.shift_remove("status");
    }
    let live_obj = live
        .map(without_managed_fields)
        .unwrap_or_else(|| Value::Object(Map::new()));

    // Upstream types both objects first; failures are its plain (500) errors.
    let meta_str = |k: &str| {
        applied
            .get("metadata")
            .and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    let (group, version) = split_api_version(&applied_version);
    let ident = format!(
        "{}/{}; {group}/{version}, Kind={kind}",
        meta_str("namespace"),
        meta_str("name")
    );
    let config_set = to_field_set(&config, schema, true).map_err(|e| {
        PatchError::ApplyFailed(format!(
            "failed to create typed patch object ({ident}): {e}"
        ))
    })?;
    let live_set = to_field_set(&live_obj, schema, false).map_err(|e| {
        PatchError::ApplyFailed(format!("failed to create typed live object ({ident}): {e}"))
    })?;

    let mut managers = live.and_then(decode_managers).unwrap_or_default();
    if live.is_some() && managers.is_empty() {
        // Upstream's skip-non-applied manager: before the first apply, the live object's fields
        // are recorded as owned by "before-first-apply".
        managers.push(Entry {
            manager: "before-first-apply".into(),
            operation: "Update".into(),
            api_version: live_version.clone(),
            time: Some(now.to_string()),
            subresource: String::new(),
            fields: owned_set(&live_set, &ignored),
        });
    }

    let ctx = ApplyCtx {
        live_obj: &live_obj,
        config: &config,
        set: owned_set(&config_set, &ignored),
        schema,
        ignored: &ignored,
        manager,
        now,
        api_version: &applied_version,
    };
    let internal =
        |e: TypeError| PatchError::ApplyFailed(format!("failed to merge ({ident}): {e}"));
    let (mut merged, managers) = match ctx.apply(managers.clone(), force).map_err(internal)? {
        Err(conflicts) if manager == "kubectl" && !force => {
            let allowed = allowed_from_last_applied(&live_obj, schema).map_err(internal)?;
            let remaining: Vec<FieldConflict> = conflicts
                .into_iter()
                .filter(|c| !allowed.iter().any(|p| display_path(p) == c.field))
                .collect();
            if !remaining.is_empty() {
                return Err(PatchError::ApplyConflict(remaining));
            }
            match ctx.apply(managers, true).map_err(internal)? {
                Ok(done) => done,
                Err(conflicts) => return Err(PatchError::ApplyConflict(conflicts)),
            }
        }
        Err(conflicts) => return Err(PatchError::ApplyConflict(conflicts)),
        Ok(done) => done,
    };

    if manager == "kubectl" {
        sync_last_applied(&mut merged, applied);
    }
    write_managers(&mut merged, managers);
    Ok(merged)
}

fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

/// One server-side apply's inputs.
struct ApplyCtx<'a> {
    live_obj: &'a Value,
    config: &'a Value,
    /// The fields the configuration sets (what the applier will own).
    set: FieldSet,
    schema: Schema,
    ignored: &'a [Path],
    manager: &'a str,
    now: &'a str,
    api_version: &'a str,
}

/// The merged object and managers, or the conflicts that stopped the apply.
type ApplyOutcome = Result<(Value, Vec<Entry>), Vec<FieldConflict>>;

impl ApplyCtx<'_> {
    /// Merge, own, prune, then check conflicts (or take ownership when forced). Upstream
    /// `Updater.Apply`.
    fn apply(&self, mut managers: Vec<Entry>, force: bool) -> Result<ApplyOutcome, TypeError> {
        let mut merged = merge_values(
            self.live_obj,
            self.config,
            Ssa::Default,
            self.schema,
            &mut Vec::new(),
        )?
        .unwrap_or_else(|| Value::Object(Map::new()));
        let me = match managers
            .iter()
            .position(|e| e.same_identity(self.manager, "Apply", self.api_version, ""))
        {
            Some(i) => i,
            None => {
                managers.push(Entry {
                    manager: self.manager.to_string(),
                    operation: "Apply".into(),
                    api_version: self.api_version.to_string(),
                    time: None,
                    subresource: String::new(),
                    fields: FieldSet::new(),
                });
                managers.len() - 1
            }
        };
        let last_set = std::mem::replace(&mut managers[me].fields, self.set.clone());
        managers[me].api_version = self.api_version.to_string();
        managers[me].time = Some(self.now.to_string());

        // Prune: what this manager applied last time, no longer applies, and nobody else owns.
        if !last_set.is_empty() {
            let owned: FieldSet = managers
                .iter()
                .flat_map(|e| e.fields.iter().cloned())
                .collect();
            let owned = ensure_named(&owned);
            let last = ensure_named(&last_set);
            let present = ensure_named(&to_field_set(&merged, self.schema, false)?);
            let strip = stripped();
            let mut doomed: Vec<&Path> = present
                .iter()
                .filter(|p| last.contains(*p) && !owned.contains(*p) && !strip.contains(*p))
                .collect();
            doomed.sort_by_key(|p| p.len());
            for p in doomed {
                remove_path(&mut merged, p);
            }
        }

        // Conflicts with (or, forced, ownership taken from) other managers.
        let cmp = compare(self.live_obj, &merged, self.schema)?;
        let cmp = Comparison {
            added: recursive_difference(&cmp.added, self.ignored),
            modified: recursive_difference(&cmp.modified, self.ignored),
            removed: recursive_difference(&cmp.removed, self.ignored),
        };
        if !force {
            let mut conflicts = Vec::new();
            for (i, e) in managers.iter().enumerate() {
                if i == me {
                    continue;
                }
                for p in e
                    .fields
                    .iter()
                    .filter(|p| cmp.modified.contains(*p) || cmp.added.contains(*p))
                {
                    conflicts.push(FieldConflict {
                        manager: e.printed(),
                        field: display_path(p),
                    });
                }
            }
            if !conflicts.is_empty() {
                conflicts.sort_by(|a, b| a.manager.cmp(&b.manager));
                return Ok(Err(conflicts));
            }
        }
        take_from_others(&mut managers, Some(me), &cmp);
        Ok(Ok((merged, managers)))
    }
}

/// Fields of the last client-side-applied configuration that still hold their applied value.
fn allowed_from_last_applied(live_obj: &Value, schema: Schema) -> Result<FieldSet, TypeError> {
    let Some(text) = live_obj
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(LAST_APPLIED))
        .and_then(Value::as_str)
    else {
        return Ok(FieldSet::new());
    };
    let Ok(last) = serde_json::from_str::<Value>(text) else {
        return Ok(FieldSet::new());
    };
    let set = to_field_set(&last, schema, false)?;
    let cmp = compare(&last, live_obj, schema)?;
    Ok(set
        .into_iter()
        .filter(|p| !cmp.modified.contains(p))
        .collect())
}

/// Keep `last-applied-configuration` (when present) equal to what `kubectl` applied last.
fn sync_last_applied(obj: &mut Value, applied: &Value) {
    let has = obj
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(LAST_APPLIED))
        .is_some();
    if !has {
        return;
    }
    let mut copy = applied.clone();
    if let Some(annotations) = copy
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
    {
        annotations.shift_remove(LAST_APPLIED);
        if annotations.is_empty()
            && let Some(meta) = copy.get_mut("metadata").and_then(Value::as_object_mut)
        {
            meta.shift_remove("annotations");
        }
    }
    let text = format!("{}\n", sorted(copy));
    if let Some(a) = obj
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
    {
        a.insert(LAST_APPLIED.to_string(), Value::String(text));
    }
}

/// Keys sorted at every level, as Go's JSON encoder writes maps.
fn sorted(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// Record an ordinary write (POST/PUT/PATCH, main resource) by `manager` in
/// `new.metadata.managedFields`, like upstream's field manager on Update operations: the
/// manager's `Update` entry gains every field the write added or changed (creates: every field
/// set), other managers lose them, and everyone loses removed fields. `old` is `None` on create.
/// A request carrying `managedFields: []` (or `[{}]`) resets ownership; objects that have no
/// managed fields are left untracked on update, as upstream does.
pub fn record_update(old: Option<&Value>, new: &mut Value, kind: &str, manager: &str, now: &str) {
    record_update_with(old, new, kind, manager, "", now);
}

/// [`record_update`] for a subresource write (`"status"`, `"scale"`): the entry carries the
/// subresource, and a status write owns only status.
pub fn record_update_with(
    old: Option<&Value>,
    new: &mut Value,
    kind: &str,
    manager: &str,
    subresource: &str,
    now: &str,
) {
    let from_request = decode_managers(new);
    let reset = from_request.as_ref().is_some_and(Vec::is_empty)
        && new
            .get("metadata")
            .and_then(|m| m.get("managedFields"))
            .is_some();
    let mut managers = match from_request {
        Some(m) if !m.is_empty() => m,
        _ if reset => Vec::new(),
        _ => old.and_then(decode_managers).unwrap_or_default(),
    };
    if old.is_some() && managers.is_empty() && !reset {
        // Untracked objects stay untracked on update.
        if let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.shift_remove("managedFields");
        }
        return;
    }
    let schema = Schema::for_kind(kind).unwrap_or_else(Schema::generic);
    let ignored = ignored_paths(kind, subresource);
    let old_obj = old
        .map(without_managed_fields)
        .unwrap_or_else(|| zero_object(kind));
    let new_obj = without_managed_fields(new);
    let Ok(cmp) = compare(&old_obj, &new_obj, schema) else {
        // Objects the schema cannot key (e.g. list items missing a key field) are written
        // without changing ownership, as upstream's UpdateNoErrors does.
        return;
    };
    let changed: FieldSet = owned_set(&cmp.modified.union(&cmp.added).cloned().collect(), &ignored);
    let cmp = Comparison {
        added: recursive_difference(&cmp.added, &ignored),
        modified: recursive_difference(&cmp.modified, &ignored),
        removed: recursive_difference(&cmp.removed, &ignored),
    };
    let api_version = {
        let v = api_version_of(new);
        if v.is_empty() {
            old.map(api_version_of).unwrap_or_default()
        } else {
            v
        }
    };
    take_from_others(&mut managers, None, &cmp);
    if !changed.is_empty() {
        match managers
            .iter_mut()
            .find(|e| e.same_identity(manager, "Update", &api_version, subresource))
        {
            Some(e) => {
                e.fields.extend(changed);
                e.time = Some(now.to_string());
            }
            None => managers.push(Entry {
                manager: manager.to_string(),
                operation: "Update".into(),
                api_version,
                time: Some(now.to_string()),
                subresource: subresource.to_string(),
                fields: changed,
            }),
        }
    }
    write_managers(new, managers);
}
