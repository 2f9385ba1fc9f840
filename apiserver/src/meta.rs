//! Small helpers over `serde_json::Value` objects: reading and writing `metadata` fields,
//! timestamps in Kubernetes' RFC 3339 form, names generated from `generateName`.

use rand::Rng;
use serde_json::{Map, Value};

/// `metadata` of an object, if it is a JSON object.
pub fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

/// `metadata` of an object, created (as `{}`) when missing or not an object.
/// `obj` must be a JSON object; other values are replaced by one.
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let Value::Object(root) = obj else {
        unreachable!("made an object above")
    };
    let m = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !m.is_object() {
        *m = Value::Object(Map::new());
    }
    match m {
        Value::Object(m) => m,
        _ => unreachable!("made an object above"),
    }
}

/// A string field of `metadata` (`""` when absent).
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    meta(obj)
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `metadata.finalizers` as strings.
pub fn finalizers(obj: &Value) -> Vec<String> {
    meta(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Sets `metadata.finalizers`, removing the field when empty (as upstream serializes it).
pub fn set_finalizers(obj: &mut Value, list: &[String]) {
    let m = meta_mut(obj);
    if list.is_empty() {
        m.remove("finalizers");
    } else {
        m.insert(
            "finalizers".into(),
            Value::Array(list.iter().cloned().map(Value::String).collect()),
        );
    }
}

/// `metadata.generation` (0 when absent).
pub fn generation(obj: &Value) -> i64 {
    meta(obj)
        .and_then(|m| m.get("generation"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// `metadata.labels` as a string map.
pub fn labels(obj: &Value) -> Option<&Map<String, Value>> {
    meta(obj)
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
}

pub use api::time::{now, rfc3339};

/// Upstream `utilrand.String`'s alphabet (no vowels, no confusable digits).
const NAME_CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A name from `generateName` as upstream's `SimpleNameGenerator`: the prefix cut to 58
/// characters plus 5 random characters.
pub fn generate_name(prefix: &str) -> String {
    let mut base: String = prefix.chars().take(58).collect();
    let mut rng = rand::rng();
    for _ in 0..5 {
        base.push(NAME_CHARS[rng.random_range(0..NAME_CHARS.len())] as char);
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn helpers() {
        let mut v = json!({"metadata": {"name": "a", "finalizers": ["x"]}});
        assert_eq!(meta_str(&v, "name"), "a");
        assert_eq!(finalizers(&v), ["x"]);
        set_finalizers(&mut v, &[]);
        assert!(meta(&v).unwrap().get("finalizers").is_none());
        let mut s = json!("x");
        meta_mut(&mut s).insert("name".into(), json!("b"));
        assert_eq!(meta_str(&s, "name"), "b");
        let n = generate_name("web-");
        assert_eq!(n.len(), 9);
        assert!(n.starts_with("web-"));
        let t: k8s_openapi::jiff::Timestamp = "2024-01-02T03:04:05.678Z".parse().unwrap();
        assert_eq!(rfc3339(t), "2024-01-02T03:04:05Z");
    }
}
