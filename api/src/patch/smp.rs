//! Strategic merge patch: applying one (the server side, [`apply`]) and computing the one
//! `kubectl apply` sends ([`three_way_strategic`]). A port of upstream
//! `apimachinery/pkg/util/strategicpatch/patch.go`, kept close to its structure (and its error
//! texts) so behaviour can be checked against it function by function: `merge_map`,
//! `merge_slice`, `merge_patch_into_original` (`$setElementOrder`), `apply_retain_keys`, and on
//! the diff side `diff_maps`, `diff_lists`.
//!
//! Where upstream leaves directive keys or nulls inside values it copies verbatim (which its
//! typed decoding drops afterwards), this port strips them, because our objects stay JSON.
//!
//! Over 800 lines on purpose: the apply and diff sides are one algorithm (upstream's
//! `strategicpatch/patch.go` is over 2,000 lines) and stay together so each function maps onto
//! its upstream counterpart.

use serde_json::{Map, Value};

use super::PatchError;
use super::schema::{FieldMeta, Schema, Smp};

const DIRECTIVE: &str = "$patch";
const DELETE: &str = "delete";
const REPLACE: &str = "replace";
const MERGE: &str = "merge";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";

const ERR_PRIMITIVE_LIST: &str = "invalid patch format of primitive list";
const ERR_RETAIN_KEYS: &str = "invalid patch format of retainKeys";
const ERR_SET_ELEMENT_ORDER: &str = "invalid patch format of setElementOrder list";
const ERR_LIST_OF_LISTS: &str = "lists of lists are not supported";

type Result<T> = std::result::Result<T, PatchError>;

fn fail(msg: impl Into<String>) -> PatchError {
    PatchError::StrategicMerge(msg.into())
}

/// Options of upstream's `mergeMap`.
#[derive(Clone, Copy, Debug)]
struct MergeOptions {
    /// Apply `$deleteFromPrimitiveList`/`$setElementOrder`/`$retainKeys` (server side) rather
    /// than carrying them over (merging two patches, client side).
    merge_parallel_list: bool,
    /// Drop nulls that match nothing (server side) rather than keeping them as deletions.
    ignore_unmatched_nulls: bool,
}

const SERVER: MergeOptions = MergeOptions {
    merge_parallel_list: true,
    ignore_unmatched_nulls: true,
};
const CLIENT: MergeOptions = MergeOptions {
    merge_parallel_list: false,
    ignore_unmatched_nulls: false,
};

/// Apply `patch` to `original` (server side, upstream's `StrategicMergeMapPatch`).
pub(crate) fn apply(original: &Value, patch: &Value, schema: Schema) -> Result<Value> {
    let original = match original {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        _ => return Err(PatchError::Malformed("invalid JSON document".to_string())),
    };
    let patch = as_patch_map(patch)?;
    merge_map(original, patch, schema, SERVER).map(Value::Object)
}

fn as_patch_map(patch: &Value) -> Result<Map<String, Value>> {
    match patch {
        Value::Object(m) => Ok(m.clone()),
        Value::Null => Ok(Map::new()),
        other => Err(PatchError::Malformed(format!(
            "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            json_type_name(other)
        ))),
    }
}

fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Go's `%v` of a JSON value, used for sorting and messages like upstream's.
fn go_fmt(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) => go_float(f),
            None => n.to_string(),
        },
        Value::Array(a) => format!("[{}]", a.iter().map(go_fmt).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", go_fmt(&m[*k])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

/// `strconv.FormatFloat(f, 'g', -1, 64)`: shortest digits, exponent form outside [1e-4, 1e6).
fn go_float(f: f64) -> String {
    if f == 0.0 {
        return "0".to_string();
    }
    let exp = f.abs().log10().floor() as i32;
    if (-4..6).contains(&exp) {
        return format!("{f}");
    }
    let e = format!("{f:e}");
    match e.split_once('e') {
        Some((mantissa, exp)) => {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => e,
    }
}

// ---------------------------------------------------------------------------------------------
// Applying
// ---------------------------------------------------------------------------------------------

fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    schema: Schema,
    opts: MergeOptions,
) -> Result<Map<String, Value>> {
    if let Some(directive) = patch.get(DIRECTIVE).cloned() {
        return handle_directive_in_merge_map(&directive, patch);
    }
    apply_retain_keys(&mut original, &mut patch, opts)?;
    merge_patch_into_original(&mut original, &mut patch, schema, opts)?;

    for (key, patch_v) in patch {
        let (skip, is_delete_list, key) =
            preprocess_deletion_list(key, &mut original, &patch_v, opts.merge_parallel_list)?;
        if skip {
            continue;
        }
        if patch_v.is_null() {
            original.shift_remove(&key);
            if opts.ignore_unmatched_nulls {
                continue;
            }
        }
        let Some(original_v) = original.get(&key) else {
            if !is_delete_list {
                set_cleaned(&mut original, key, patch_v, opts);
            }
            continue;
        };
        if !same_type(original_v, &patch_v) {
            if !is_delete_list {
                set_cleaned(&mut original, key, patch_v, opts);
            }
            continue;
        }
        let meta = schema.field(&key);
        let merged = match (original.shift_remove(&key), patch_v) {
            (Some(Value::Object(_)), Value::Object(p)) if meta.smp == Smp::Replace => {
                Value::Object(p)
            }
            (Some(Value::Object(o)), Value::Object(p)) => {
                Value::Object(merge_map(o, p, meta.schema, opts)?)
            }
            (Some(Value::Array(o)), Value::Array(p)) => {
                Value::Array(merge_slice_handler(o, p, meta, is_delete_list, opts)?)
            }
            (_, p) => match remove_directives(p) {
                Some(v) => v,
                None => continue,
            },
        };
        original.insert(key, merged);
    }
    Ok(original)
}

/// Insert a value absent from (or of another type than in) the original: directives and, on the
/// server side, nulls are dropped first.
fn set_cleaned(
    original: &mut Map<String, Value>,
    key: String,
    mut value: Value,
    opts: MergeOptions,
) {
    if opts.ignore_unmatched_nulls {
        discard_nulls(&mut value);
    }
    match remove_directives(value) {
        Some(v) => {
            original.insert(key, v);
        }
        None => {
            original.shift_remove(&key);
        }
    }
}

/// Go's `reflect.TypeOf(a) == reflect.TypeOf(b)` on decoded JSON.
fn same_type(a: &Value, b: &Value) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

fn handle_directive_in_merge_map(
    directive: &Value,
    mut patch: Map<String, Value>,
) -> Result<Map<String, Value>> {
    match directive.as_str() {
        Some(REPLACE) => {
            patch.shift_remove(DIRECTIVE);
            Ok(patch)
        }
        Some(DELETE) => Ok(Map::new()),
        _ => Err(bad_patch_type(directive, &patch)),
    }
}

fn bad_patch_type(directive: &Value, m: &Map<String, Value>) -> PatchError {
    fail(format!(
        "unknown patch type: {} in map: {}",
        go_fmt(directive),
        go_fmt(&Value::Object(m.clone()))
    ))
}

fn no_merge_key(m: &Map<String, Value>, key: &str) -> PatchError {
    fail(format!(
        "map: {} does not contain declared merge key: {key}",
        go_fmt(&Value::Object(m.clone()))
    ))
}

fn bad_arg_type(expected: &str, actual: &Value) -> PatchError {
    let actual = match actual {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    };
    fail(format!("expected a {expected}, but received a {actual}"))
}

/// Strip `$patch` maps (and the keys holding them) from a value; `None` when the value itself
/// is such a map. Upstream `removeDirectives`.
fn remove_directives(value: Value) -> Option<Value> {
    match value {
        Value::Object(m) => {
            if m.contains_key(DIRECTIVE) {
                return None;
            }
            let cleaned = m
                .into_iter()
                .filter_map(|(k, v)| remove_directives(v).map(|v| (k, v)))
                .collect();
            Some(Value::Object(cleaned))
        }
        Value::Array(a) => Some(Value::Array(
            a.into_iter().filter_map(remove_directives).collect(),
        )),
        other => Some(other),
    }
}

/// Drop null-valued keys at any depth. Upstream `discardNullValuesFromPatch`.
fn discard_nulls(value: &mut Value) {
    match value {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(discard_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(discard_nulls),
        _ => {}
    }
}

/// `$deleteFromPrimitiveList/<key>` handling: returns (skip, is_delete_list, key).
fn preprocess_deletion_list(
    key: String,
    original: &mut Map<String, Value>,
    patch_v: &Value,
    merge_deletion_list: bool,
) -> Result<(bool, bool, String)> {
    if !key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
        return Ok((false, false, key));
    }
    if !merge_deletion_list {
        original.insert(key, patch_v.clone());
        return Ok((true, false, String::new()));
    }
    let stripped = extract_key(&key, DELETE_FROM_PRIMITIVE_LIST)?;
    Ok((false, true, stripped))
}

fn extract_key(s: &str, prefix: &str) -> Result<String> {
    match s.split_once('/') {
        Some((p, rest)) if p == prefix => Ok(rest.to_string()),
        _ => Err(PatchError::BadDirective(
            if prefix == DELETE_FROM_PRIMITIVE_LIST {
                ERR_PRIMITIVE_LIST
            } else {
                ERR_SET_ELEMENT_ORDER
            }
            .to_string(),
        )),
    }
}

fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    opts: MergeOptions,
) -> Result<()> {
    let Some(retain) = patch.shift_remove(RETAIN_KEYS) else {
        return Ok(());
    };
    if !opts.merge_parallel_list {
        // Merging two patches: both must carry the same list.
        match original.get(RETAIN_KEYS) {
            Some(existing) if *existing != retain => {
                return Err(fail(format!(
                    "{} and {} are not deep equal: this may happen when calculating the 3-way diff patch",
                    go_fmt(existing),
                    go_fmt(&retain)
                )));
            }
            Some(_) => {}
            None => {
                original.insert(RETAIN_KEYS.to_string(), retain);
            }
        }
        return Ok(());
    }
    let Value::Array(list) = retain else {
        return Err(PatchError::BadDirective(ERR_RETAIN_KEYS.to_string()));
    };
    let keep = |k: &str| list.iter().any(|v| v.as_str() == Some(k));
    for (k, v) in patch.iter() {
        if v.is_null()
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || k.starts_with(SET_ELEMENT_ORDER)
        {
            continue;
        }
        if !keep(k) {
            return Err(PatchError::BadDirective(ERR_RETAIN_KEYS.to_string()));
        }
    }
    original.retain(|k, _| keep(k));
    Ok(())
}

/// `$setElementOrder/<list>`: merge the list now and order the result by the directive.
fn merge_patch_into_original(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    schema: Schema,
    opts: MergeOptions,
) -> Result<()> {
    let keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for key in keys {
        let Some(order_v) = patch.shift_remove(&key) else {
            continue;
        };
        if !opts.merge_parallel_list {
            match original.get(&key) {
                Some(existing) if *existing != order_v => {
                    return Err(PatchError::BadDirective(ERR_SET_ELEMENT_ORDER.to_string()));
                }
                Some(_) => {}
                None => {
                    original.insert(key.clone(), order_v.clone());
                }
            }
        }
        let Value::Array(order) = order_v else {
            return Err(bad_arg_type("[]interface {}", &order_v));
        };
        let list_key = extract_key(&key, SET_ELEMENT_ORDER)?;
        let original_list = match original.get(&list_key) {
            Some(Value::Array(a)) => Some(a.clone()),
            Some(other) => return Err(bad_arg_type("[]interface {}", other)),
            None => None,
        };
        let patch_list = match patch.get(&list_key) {
            Some(Value::Array(a)) => Some(a.clone()),
            Some(other) => return Err(bad_arg_type("[]interface {}", other)),
            None => None,
        };
        let meta = schema.field(&list_key);
        let merge_key = meta.smp.merge_key();
        validate_patch_with_set_order_list(
            patch_list.as_deref().unwrap_or(&[]),
            &order,
            merge_key,
        )?;

        let merged = match (&original_list, &patch_list) {
            (Some(o), None) => o.clone(),
            (None, Some(p)) => match remove_directives(Value::Array(p.clone())) {
                Some(Value::Array(a)) => a,
                _ => continue,
            },
            (Some(o), Some(p)) => merge_slice_handler(o.clone(), p.clone(), meta, false, opts)?,
            (None, None) => continue,
        };
        let (patch_items, server_only) = if merge_key.is_empty() {
            partition_primitives(merged, &order)
        } else {
            partition_maps(merged, &order, merge_key)?
        };
        let original_field = original_list.unwrap_or_default();
        let kind = slice_element_kind(&[&original_field, patch_list.as_deref().unwrap_or(&[])])?;
        let both = normalize_element_order(
            patch_items,
            server_only,
            &order,
            &original_field,
            merge_key,
            kind,
        )?;
        original.insert(list_key.clone(), Value::Array(both));
        patch.shift_remove(&list_key);
    }
    Ok(())
}

fn validate_patch_with_set_order_list(
    patch_list: &[Value],
    order: &[Value],
    merge_key: &str,
) -> Result<()> {
    if order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let non_delete: Vec<Value> = if merge_key.is_empty() {
        patch_list.to_vec()
    } else {
        extract_to_delete_items(patch_list.to_vec())?.0
    };
    let (mut pi, mut oi) = (0, 0);
    while pi < non_delete.len() && oi < order.len() {
        if non_delete[pi]
            .as_object()
            .is_some_and(|m| m.contains_key(DIRECTIVE))
        {
            pi += 1;
            continue;
        }
        if merge_key_value_equal(&non_delete[pi], &order[oi], merge_key)? {
            pi += 1;
        }
        oi += 1;
    }
    if pi < non_delete.len() && oi >= order.len() {
        return Err(fail(format!(
            "the order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER} list:\n{}",
            go_fmt(&Value::Array(patch_list.to_vec())),
            go_fmt(&Value::Array(order.to_vec()))
        )));
    }
    Ok(())
}

fn merge_key_value_equal(left: &Value, right: &Value, merge_key: &str) -> Result<bool> {
    if merge_key.is_empty() {
        return Ok(left == right);
    }
    let l = left
        .as_object()
        .ok_or_else(|| bad_arg_type("map[string]interface {}", left))?;
    let r = right
        .as_object()
        .ok_or_else(|| bad_arg_type("map[string]interface {}", right))?;
    let lv = l.get(merge_key).ok_or_else(|| no_merge_key(l, merge_key))?;
    let rv = r.get(merge_key).ok_or_else(|| no_merge_key(r, merge_key))?;
    Ok(lv == rv)
}

fn merge_slice_handler(
    original: Vec<Value>,
    patch: Vec<Value>,
    meta: FieldMeta,
    is_delete_list: bool,
    opts: MergeOptions,
) -> Result<Vec<Value>> {
    if meta.smp.is_merge() || is_delete_list {
        return merge_slice(
            original,
            patch,
            meta.schema,
            meta.smp.merge_key(),
            opts,
            is_delete_list,
        );
    }
    if opts.ignore_unmatched_nulls {
        let mut v = Value::Array(patch);
        discard_nulls(&mut v);
        if let Some(Value::Array(a)) = remove_directives(v) {
            return Ok(a);
        }
        return Ok(Vec::new());
    }
    Ok(patch)
}

/// What a list holds (Go's element `reflect.Kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ElemKind {
    Map,
    Scalar(u8),
}

fn slice_element_kind(slices: &[&[Value]]) -> Result<ElemKind> {
    let mut prev: Option<ElemKind> = None;
    for v in slices.iter().flat_map(|s| s.iter()) {
        let kind = match v {
            Value::Array(_) => {
                return Err(PatchError::Unprocessable(ERR_LIST_OF_LISTS.to_string()));
            }
            Value::Object(_) => ElemKind::Map,
            Value::Null => ElemKind::Scalar(0),
            Value::Bool(_) => ElemKind::Scalar(1),
            Value::Number(_) => ElemKind::Scalar(2),
            Value::String(_) => ElemKind::Scalar(3),
        };
        match prev {
            Some(p) if p != kind => {
                let all: Vec<Value> = slices.iter().map(|s| Value::Array(s.to_vec())).collect();
                return Err(fail(format!(
                    "list element types are not identical: {}",
                    go_fmt(&Value::Array(all))
                )));
            }
            _ => prev = Some(kind),
        }
    }
    prev.ok_or_else(|| fail("no elements in any of the given slices"))
}

fn merge_slice(
    original: Vec<Value>,
    patch: Vec<Value>,
    schema: Schema,
    merge_key: &str,
    opts: MergeOptions,
    is_delete_list: bool,
) -> Result<Vec<Value>> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let kind = slice_element_kind(&[&original, &patch])?;
    let (original, patch, merged) = if kind != ElemKind::Map {
        if opts.merge_parallel_list && is_delete_list {
            return Ok(original
                .into_iter()
                .filter(|v| !patch.contains(v))
                .collect());
        }
        let mut both = original.clone();
        both.extend(patch.iter().cloned());
        (original, patch, deduplicate_scalars(both))
    } else {
        if merge_key.is_empty() {
            return Err(fail(format!(
                "cannot merge lists without merge key for {}",
                schema.name()
            )));
        }
        let (original, patch) = merge_slice_with_special_elements(original, patch, merge_key)?;
        let merged = merge_slice_without_special_elements(
            original.clone(),
            &patch,
            merge_key,
            schema,
            opts,
        )?;
        (original, patch, merged)
    };
    let (patch_items, server_only) = if merge_key.is_empty() {
        partition_primitives(merged, &patch)
    } else {
        partition_maps(merged, &patch, merge_key)?
    };
    normalize_element_order(patch_items, server_only, &patch, &original, merge_key, kind)
}

/// Go's in-place "clever" deduplication; its order quirk matters before the final sort.
fn deduplicate_scalars(mut s: Vec<Value>) -> Vec<Value> {
    let mut length = s.len() as isize - 1;
    let mut i: isize = 0;
    while i < length {
        let mut j = i + 1;
        while j <= length {
            if s[i as usize] == s[j as usize] {
                s[j as usize] = s[length as usize].clone();
                s.truncate(length as usize);
                length -= 1;
                j -= 1;
            }
            j += 1;
        }
        i += 1;
    }
    s
}

fn merge_slice_with_special_elements(
    original: Vec<Value>,
    patch: Vec<Value>,
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut original = original;
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for v in patch {
        let Value::Object(m) = &v else {
            return Err(bad_arg_type("map[string]interface {}", &v));
        };
        let Some(directive) = m.get(DIRECTIVE) else {
            plain.push(v);
            continue;
        };
        match directive.as_str() {
            Some(DELETE) => {
                let key_value = m.get(merge_key).ok_or_else(|| no_merge_key(m, merge_key))?;
                original.retain(|item| item.get(merge_key) != Some(key_value));
            }
            Some(REPLACE) => replace = true,
            Some(MERGE) => return Err(fail("merging lists cannot yet be specified in the patch")),
            _ => return Err(bad_patch_type(directive, m)),
        }
    }
    if replace {
        return Ok((plain, Vec::new()));
    }
    Ok((original, plain))
}

fn merge_slice_without_special_elements(
    mut original: Vec<Value>,
    patch: &[Value],
    merge_key: &str,
    schema: Schema,
    opts: MergeOptions,
) -> Result<Vec<Value>> {
    for v in patch {
        let Value::Object(m) = v else {
            return Err(bad_arg_type("map[string]interface {}", v));
        };
        let key_value = m.get(merge_key).ok_or_else(|| no_merge_key(m, merge_key))?;
        let mut found = None;
        for (i, item) in original.iter().enumerate() {
            let Value::Object(o) = item else {
                return Err(fail(format!("value for key {i} is not a map")));
            };
            if o.get(merge_key) == Some(key_value) {
                found = Some(i);
                break;
            }
        }
        match found {
            Some(i) => {
                let Value::Object(o) = std::mem::take(&mut original[i]) else {
                    continue;
                };
                original[i] = Value::Object(merge_map(o, m.clone(), schema, opts)?);
            }
            None => {
                if opts.ignore_unmatched_nulls {
                    let mut item = v.clone();
                    discard_nulls(&mut item);
                    if let Some(item) = remove_directives(item) {
                        original.push(item);
                    }
                } else {
                    original.push(v.clone());
                }
            }
        }
    }
    Ok(original)
}

fn partition_primitives(merged: Vec<Value>, by: &[Value]) -> (Vec<Value>, Vec<Value>) {
    let by = Positions::new(by, "", ElemKind::Scalar(0));
    merged.into_iter().partition(|v| by.of(v).is_some())
}

fn partition_maps(
    merged: Vec<Value>,
    by: &[Value],
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>)> {
    if let Some(i) = by.iter().position(|item| !item.is_object()) {
        return Err(fail(format!("value for key {i} is not a map")));
    }
    let by = Positions::new(by, merge_key, ElemKind::Map);
    let mut in_patch = Vec::new();
    let mut server_only = Vec::new();
    for v in merged {
        let Value::Object(m) = &v else {
            return Err(bad_arg_type("map[string]interface {}", &v));
        };
        if !m.contains_key(merge_key) {
            return Err(no_merge_key(m, merge_key));
        }
        if by.of(&v).is_some() {
            in_patch.push(v);
        } else {
            server_only.push(v);
        }
    }
    Ok((in_patch, server_only))
}

fn normalize_element_order(
    patch: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: &str,
    kind: ElemKind,
) -> Result<Vec<Value>> {
    let patch = normalize_slice_order(patch, patch_order, merge_key, kind)?;
    let server_only = normalize_slice_order(server_only, server_order, merge_key, kind)?;
    Ok(merge_sorted_slice(
        server_only,
        patch,
        server_order,
        merge_key,
        kind,
    ))
}

/// First positions of a list's items, matching maps by their merge key and other items by
/// value (upstream `index`, where items without the key all match each other), hashed so
/// long lists stay linear.
struct Positions {
    merge_key: String,
    kind: ElemKind,
    first: std::collections::HashMap<String, usize>,
}

impl Positions {
    fn new(list: &[Value], merge_key: &str, kind: ElemKind) -> Positions {
        let mut p = Positions {
            merge_key: merge_key.to_string(),
            kind,
            first: Default::default(),
        };
        for (i, v) in list.iter().enumerate() {
            let id = p.ident(v);
            p.first.entry(id).or_insert(i);
        }
        p
    }

    fn ident(&self, v: &Value) -> String {
        if self.kind != ElemKind::Map {
            return format!("v{v}");
        }
        match v.as_object().and_then(|m| m.get(&self.merge_key)) {
            Some(k) => format!("k{k}"),
            None => "-".to_string(),
        }
    }

    fn of(&self, v: &Value) -> Option<usize> {
        self.first.get(&self.ident(v)).copied()
    }
}

fn normalize_slice_order(
    to_sort: Vec<Value>,
    order: &[Value],
    merge_key: &str,
    kind: ElemKind,
) -> Result<Vec<Value>> {
    let (mut to_sort, to_delete) = if kind == ElemKind::Map {
        for item in to_sort.iter().chain(order.iter()) {
            let m = item
                .as_object()
                .ok_or_else(|| bad_arg_type("map[string]interface {}", item))?;
            if !m.contains_key(merge_key) {
                return Err(no_merge_key(m, merge_key));
            }
        }
        extract_to_delete_items(to_sort)?
    } else {
        (to_sort, Vec::new())
    };
    // Go's sort.SliceStable is an insertion sort for short slices; its `less` treats items
    // missing from `order` as smaller, which only an insertion sort reproduces faithfully.
    let positions = Positions::new(order, merge_key, kind);
    let mut keyed: Vec<(Option<usize>, Value)> = std::mem::take(&mut to_sort)
        .into_iter()
        .map(|v| (positions.of(&v), v))
        .collect();
    let less = |a: Option<usize>, b: Option<usize>| match (a, b) {
        (Some(i), Some(j)) => i < j,
        _ => true,
    };
    for i in 1..keyed.len() {
        let mut j = i;
        while j > 0 && less(keyed[j].0, keyed[j - 1].0) {
            keyed.swap(j, j - 1);
            j -= 1;
        }
    }
    to_sort.extend(keyed.into_iter().map(|(_, v)| v));
    to_sort.extend(to_delete);
    Ok(to_sort)
}

fn extract_to_delete_items(list: Vec<Value>) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut keep = Vec::new();
    let mut delete = Vec::new();
    for v in list {
        let m = v
            .as_object()
            .ok_or_else(|| bad_arg_type("map[string]interface {}", &v))?;
        if m.get(DIRECTIVE).and_then(Value::as_str) == Some(DELETE) {
            delete.push(v);
        } else {
            keep.push(v);
        }
    }
    Ok((keep, delete))
}

/// Interleave server-only items (`left`) into the patch items (`right`), keeping both relative
/// orders and using the live order to place server-only items. Upstream `mergeSortedSlice`.
fn merge_sorted_slice(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    merge_key: &str,
    kind: ElemKind,
) -> Vec<Value> {
    let positions = Positions::new(server_order, merge_key, kind);
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => out.extend(left.next()),
            (None, Some(_)) => out.extend(right.next()),
            (Some(l), Some(r)) => {
                let li = positions.of(l);
                let ri = positions.of(r);
                let take_left = matches!((li, ri), (Some(a), Some(b)) if a < b);
                if take_left {
                    out.extend(left.next());
                } else {
                    out.extend(right.next());
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Diffing (what kubectl computes)
// ---------------------------------------------------------------------------------------------

/// Options of upstream's `diffMaps`.
#[derive(Clone, Copy, Debug, Default)]
struct DiffOptions {
    set_element_order: bool,
    ignore_changes_and_additions: bool,
    ignore_deletions: bool,
    build_retain_keys: bool,
}

/// The patch `kubectl apply` sends: deletions of fields present in `last_applied` but absent in
/// `modified`, plus every difference from `live` to `modified`, with `$setElementOrder`,
/// `$retainKeys` and `$patch: delete` list entries like upstream's `CreateThreeWayMergePatch`
/// (overwrite on). Keys are sorted like Go's JSON encoder. Unknown kinds use the generic schema
/// (only `metadata` is known).
pub fn three_way_strategic(
    original_last_applied: Option<&Value>,
    modified: &Value,
    live: &Value,
    kind: &str,
) -> std::result::Result<Value, PatchError> {
    let schema = Schema::for_kind(kind).unwrap_or_else(Schema::generic);
    let original = as_patch_map(original_last_applied.unwrap_or(&Value::Null))?;
    let modified = as_patch_map(modified)?;
    let current = as_patch_map(live)?;
    let delta = diff_maps(
        &current,
        &modified,
        schema,
        DiffOptions {
            ignore_deletions: true,
            set_element_order: true,
            ..Default::default()
        },
    )?;
    let deletions = diff_maps(
        &original,
        &modified,
        schema,
        DiffOptions {
            set_element_order: true,
            ignore_changes_and_additions: true,
            ..Default::default()
        },
    )?;
    let patch = merge_map(deletions, delta, schema, CLIENT)?;
    Ok(sort_keys(Value::Object(patch)))
}

/// The strategic merge patch turning `original` into `modified` (upstream
/// `CreateTwoWayMergePatch`), keys sorted like Go's JSON encoder.
pub fn two_way_strategic(
    original: &Value,
    modified: &Value,
    kind: &str,
) -> std::result::Result<Value, PatchError> {
    let schema = Schema::for_kind(kind).unwrap_or_else(Schema::generic);
    let original = as_patch_map(original)?;
    let modified = as_patch_map(modified)?;
    let patch = diff_maps(
        &original,
        &modified,
        schema,
        DiffOptions {
            set_element_order: true,
            ..Default::default()
        },
    )?;
    Ok(sort_keys(Value::Object(patch)))
}

/// The annotation client-side `kubectl apply` keeps the last applied manifest in.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The `modified` document `kubectl apply` diffs and sends: the manifest with
/// [`LAST_APPLIED_ANNOTATION`] set to the manifest itself, encoded like kubectl's
/// `GetModifiedConfiguration` (without that annotation, `metadata.annotations` present even
/// when empty, keys sorted, compact, trailing newline). Feed it to [`three_way_strategic`]
/// together with [`last_applied`] of the live object.
pub fn kubectl_modified_configuration(manifest: &Value) -> Value {
    let mut obj = sort_keys(manifest.clone());
    let Some(root) = obj.as_object_mut() else {
        return obj;
    };
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(meta) = meta.as_object_mut() else {
        return obj;
    };
    let mut annotations = match meta.get("annotations") {
        Some(Value::Object(a)) => a.clone(),
        _ => Map::new(),
    };
    annotations.shift_remove(LAST_APPLIED_ANNOTATION);
    meta.insert("annotations".into(), Value::Object(annotations.clone()));
    let text = format!("{}\n", sort_keys(obj.clone()));
    annotations.insert(LAST_APPLIED_ANNOTATION.into(), Value::String(text));
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("annotations".into(), sort_keys(Value::Object(annotations)));
    }
    obj
}

/// The last applied manifest recorded on a live object, if it has a readable one.
pub fn last_applied(live: &Value) -> Option<Value> {
    let text = live
        .get("metadata")?
        .get("annotations")?
        .get(LAST_APPLIED_ANNOTATION)?
        .as_str()?;
    serde_json::from_str(text).ok()
}

fn sort_keys(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_keys(v)))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

fn diff_maps(
    original: &Map<String, Value>,
    modified: &Map<String, Value>,
    schema: Schema,
    opts: DiffOptions,
) -> Result<Map<String, Value>> {
    let mut patch = Map::new();
    let mut retain_keys = Vec::new();
    for (key, modified_v) in modified {
        if opts.build_retain_keys && !modified_v.is_null() {
            retain_keys.push(Value::String(key.clone()));
        }
        let Some(original_v) = original.get(key) else {
            if !opts.ignore_changes_and_additions {
                patch.insert(key.clone(), modified_v.clone());
            }
            continue;
        };
        if key == DIRECTIVE {
            let (Some(o), Some(m)) = (original_v.as_str(), modified_v.as_str()) else {
                return Err(fail(format!("invalid value for special key: {DIRECTIVE}")));
            };
            if o != m {
                patch.insert(key.clone(), modified_v.clone());
            }
            continue;
        }
        if !same_type(original_v, modified_v) {
            if !opts.ignore_changes_and_additions {
                patch.insert(key.clone(), modified_v.clone());
            }
            continue;
        }
        match (original_v, modified_v) {
            (Value::Object(_), Value::Object(_)) if schema.field(key).smp == Smp::Replace => {
                if !opts.ignore_changes_and_additions {
                    patch.insert(key.clone(), modified_v.clone());
                }
            }
            (Value::Object(o), Value::Object(m)) => {
                let meta = schema.field(key);
                let sub = diff_maps(
                    o,
                    m,
                    meta.schema,
                    DiffOptions {
                        build_retain_keys: meta.smp.retain_keys(),
                        ..opts
                    },
                )?;
                if !sub.is_empty() {
                    patch.insert(key.clone(), Value::Object(sub));
                }
            }
            (Value::Array(o), Value::Array(m)) => {
                let meta = schema.field(key);
                if meta.smp.is_merge() {
                    let (add, delete, order) = diff_lists(
                        o,
                        m,
                        meta.schema,
                        meta.smp.merge_key(),
                        DiffOptions {
                            build_retain_keys: meta.smp.retain_keys(),
                            ..opts
                        },
                    )?;
                    if !add.is_empty() {
                        patch.insert(key.clone(), Value::Array(add));
                    }
                    if !delete.is_empty() {
                        patch.insert(
                            format!("{DELETE_FROM_PRIMITIVE_LIST}/{key}"),
                            Value::Array(delete),
                        );
                    }
                    if !order.is_empty() {
                        patch.insert(format!("{SET_ELEMENT_ORDER}/{key}"), Value::Array(order));
                    }
                } else if !opts.ignore_changes_and_additions && original_v != modified_v {
                    patch.insert(key.clone(), modified_v.clone());
                }
            }
            _ => {
                if !opts.ignore_changes_and_additions && original_v != modified_v {
                    patch.insert(key.clone(), modified_v.clone());
                }
            }
        }
    }
    if !opts.ignore_deletions {
        for key in original.keys() {
            if !modified.contains_key(key) {
                patch.insert(key.clone(), Value::Null);
            }
        }
    }
    let has_additional = original
        .iter()
        .any(|(k, v)| !v.is_null() && !modified.contains_key(k));
    if !retain_keys.is_empty() && (!patch.is_empty() || has_additional) {
        patch.insert(
            RETAIN_KEYS.to_string(),
            Value::Array(sort_scalars(retain_keys)),
        );
    }
    Ok(patch)
}

fn sort_scalars(mut s: Vec<Value>) -> Vec<Value> {
    s.sort_by_key(go_fmt);
    s
}

type ListDiff = (Vec<Value>, Vec<Value>, Vec<Value>);

fn diff_lists(
    original: &[Value],
    modified: &[Value],
    schema: Schema,
    merge_key: &str,
    opts: DiffOptions,
) -> Result<ListDiff> {
    if original.is_empty() {
        if modified.is_empty() || opts.ignore_changes_and_additions {
            return Ok((Vec::new(), Vec::new(), Vec::new()));
        }
        return Ok((modified.to_vec(), Vec::new(), Vec::new()));
    }
    let kind = slice_element_kind(&[original, modified])?;
    let mut order = Vec::new();
    if kind == ElemKind::Map {
        let (patch_list, delete_list) =
            diff_lists_of_maps(original, modified, schema, merge_key, opts)?;
        let mut patch_list = normalize_slice_order(patch_list, modified, merge_key, kind)?;
        let order_same = is_order_same(original, modified, merge_key)?;
        patch_list.extend(delete_list);
        let wants_order = (!opts.ignore_changes_and_additions
            && (!patch_list.is_empty() || !order_same))
            || (!opts.ignore_deletions && !patch_list.is_empty());
        if opts.set_element_order && wants_order {
            for v in modified {
                let key_value = v.get(merge_key).cloned().unwrap_or(Value::Null);
                let mut m = Map::new();
                m.insert(merge_key.to_string(), key_value);
                order.push(Value::Object(m));
            }
        }
        return Ok((patch_list, Vec::new(), order));
    }
    let (add, delete) = diff_lists_of_scalars(original, modified, opts);
    let add = normalize_slice_order(add, modified, merge_key, kind)?;
    let wants_order = (!opts.ignore_deletions && !delete.is_empty())
        || (!opts.ignore_changes_and_additions && original != modified);
    if opts.set_element_order && wants_order {
        order = modified.to_vec();
    }
    Ok((add, delete, order))
}

fn is_order_same(original: &[Value], modified: &[Value], merge_key: &str) -> Result<bool> {
    if original.len() != modified.len() {
        return Ok(false);
    }
    for (o, m) in original.iter().zip(modified) {
        if !merge_key_value_equal(o, m, merge_key)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn diff_lists_of_scalars(
    original: &[Value],
    modified: &[Value],
    opts: DiffOptions,
) -> (Vec<Value>, Vec<Value>) {
    let original = sort_scalars(original.to_vec());
    let modified = sort_scalars(modified.to_vec());
    let (mut oi, mut mi) = (0, 0);
    let mut add = Vec::new();
    let mut delete = Vec::new();
    while oi < original.len() || mi < modified.len() {
        let o = original.get(oi).map(go_fmt);
        let m = modified.get(mi).map(go_fmt);
        match (o, m) {
            (Some(o), Some(m)) if o == m => {
                oi += 1;
                mi += 1;
            }
            (Some(o), Some(m)) if o > m => {
                if !opts.ignore_changes_and_additions {
                    add.push(modified[mi].clone());
                }
                mi += 1;
            }
            (None, Some(_)) => {
                if !opts.ignore_changes_and_additions {
                    add.push(modified[mi].clone());
                }
                mi += 1;
            }
            _ => {
                if !opts.ignore_deletions {
                    delete.push(original[oi].clone());
                }
                oi += 1;
            }
        }
    }
    (add, deduplicate_scalars(delete))
}

fn diff_lists_of_maps(
    original: &[Value],
    modified: &[Value],
    schema: Schema,
    merge_key: &str,
    opts: DiffOptions,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let original = sort_by_merge_key(original, merge_key)?;
    let modified = sort_by_merge_key(modified, merge_key)?;
    let mut patch = Vec::new();
    let mut deletions = Vec::new();
    let (mut oi, mut mi) = (0, 0);
    while oi < original.len() || mi < modified.len() {
        let o = original.get(oi);
        let m = modified.get(mi);
        let o_key = o.map(|(k, _, _)| k.as_str());
        let m_key = m.map(|(k, _, _)| k.as_str());
        match (o, m) {
            (Some((_, _, om)), Some((_, mv, mm))) if o_key == m_key => {
                let mut sub = diff_maps(om, mm, schema, opts)?;
                if !sub.is_empty() {
                    sub.insert(merge_key.to_string(), mv.clone());
                    patch.push(Value::Object(sub));
                }
                oi += 1;
                mi += 1;
            }
            (None, Some((_, _, mm))) => {
                if !opts.ignore_changes_and_additions {
                    patch.push(Value::Object(mm.clone()));
                }
                mi += 1;
            }
            (Some(_), Some((_, _, mm))) if o_key > m_key => {
                if !opts.ignore_changes_and_additions {
                    patch.push(Value::Object(mm.clone()));
                }
                mi += 1;
            }
            (Some((_, ov, _)), _) => {
                if !opts.ignore_deletions {
                    let mut d = Map::new();
                    d.insert(DIRECTIVE.to_string(), Value::String(DELETE.to_string()));
                    d.insert(merge_key.to_string(), ov.clone());
                    deletions.push(Value::Object(d));
                }
                oi += 1;
            }
            (None, None) => break,
        }
    }
    Ok((patch, deletions))
}

/// A list item keyed for diffing: (`%v` of its merge key, merge key value, the item).
type KeyedItem = (String, Value, Map<String, Value>);

/// Items sorted by the `%v` of their merge key.
fn sort_by_merge_key(list: &[Value], merge_key: &str) -> Result<Vec<KeyedItem>> {
    let mut out = Vec::with_capacity(list.len());
    for v in list {
        let m = v
            .as_object()
            .ok_or_else(|| bad_arg_type("map[string]interface {}", v))?;
        let key_value = m.get(merge_key).ok_or_else(|| no_merge_key(m, merge_key))?;
        out.push((go_fmt(key_value), key_value.clone(), m.clone()));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}
