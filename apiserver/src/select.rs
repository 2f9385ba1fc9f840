//! `labelSelector` and `fieldSelector` query parameters: parsing (upstream
//! `labels.Parse` / `fields.ParseSelector` syntax) and matching against stored objects,
//! including the per-kind field labels upstream registers (`spec.nodeName`,
//! `status.phase`, `involvedObject.*`…); an unregistered field is a 400.

use api::registry::ResourceInfo;
use api::status::ApiError;
use serde_json::Value;

/// One label requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LabelReq {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
    Gt(String, i64),
    Lt(String, i64),
}

/// One field requirement (`=`/`==` or `!=`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldReq {
    field: String,
    value: String,
    negate: bool,
}

/// Label and field selectors of one request; empty selectors match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    labels: Vec<LabelReq>,
    fields: Vec<FieldReq>,
}

/// Splits on commas outside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn label_err(sel: &str, msg: &str) -> ApiError {
    ApiError::bad_request(format!(
        "unable to parse requirement: {msg} (selector {sel:?})"
    ))
}

fn parse_set(sel: &str, rest: &str) -> Result<Vec<String>, ApiError> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| label_err(sel, "found '', expected: '('"))?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 317
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn parse_label_req(sel: &str, part: &str) -> Result<LabelReq, ApiError> {
    let p = part.trim();
    if let Some(k) = p.strip_prefix('!') {
        let k = k.trim();
        if !valid_key(k) {
            return Err(label_err(sel, &format!("invalid label key {k:?}")));
        }
        return Ok(LabelReq::NotExists(k.to_string()));
    }
    for (op, ctor) in [(" notin ", 1), (" in ", 0)] {
        if let Some(idx) = p.find(op) {
            let k = p[..idx].trim();
            if !valid_key(k) {
                return Err(label_err(sel, &format!("invalid label key {k:?}")));
            }
            let set = parse_set(sel, &p[idx + op.len()..])?;
            return Ok(if ctor == 1 {
                LabelReq::NotIn(k.to_string(), set)
            } else {
                LabelReq::In(k.to_string(), set)
            });
        }
    }
    for op in ["!=", "==", "=", ">", "<"] {
        if let Some(idx) = p.find(op) {
            let k = p[..idx].trim();
            let v = p[idx + op.len()..].trim();
            if !valid_key(k) {
                return Err(label_err(sel, &format!("invalid label key {k:?}")));
            }
            if v.chars()
                .any(|c| c.is_whitespace() || matches!(c, '=' | '!' | '(' | ')'))
            {
                return Err(label_err(sel, &format!("invalid label value {v:?}")));
            }
            let (k, v) = (k.to_string(), v.to_string());
            return match op {
                "!=" => Ok(LabelReq::NotEq(k, v)),
                "==" | "=" => Ok(LabelReq::Eq(k, v)),
                _ => {
                    let n: i64 = v
                        .parse()
                        .map_err(|_| label_err(sel, &format!("invalid integer value {v:?}")))?;
                    Ok(if op == ">" {
                        LabelReq::Gt(k, n)
                    } else {
                        LabelReq::Lt(k, n)
                    })
                }
            };
        }
    }
    if !valid_key(p) {
        return Err(label_err(sel, &format!("invalid label key {p:?}")));
    }
    Ok(LabelReq::Exists(p.to_string()))
}

/// Field labels a kind supports beyond `metadata.name` and `metadata.namespace`.
fn extra_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "Pod" => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        "Event" => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        "Namespace" => &["status.phase"],
        "Node" => &["spec.unschedulable"],
        "Secret" => &["type"],
        "ReplicaSet" => &["status.replicas"],
        "Service" => &["spec.clusterIP", "spec.type"],
        _ => &[],
    }
}

/// The value of a field label on an object, as upstream's `GetAttrs` renders it.
fn field_value(obj: &Value, field: &str) -> String {
    let path = match field {
        "source" => "/source/component".to_string(),
        f => format!("/{}", f.replace('.', "/")),
    };
    match obj.pointer(&path) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => match field {
            "spec.hostNetwork" | "spec.unschedulable" => "false".into(),
            "status.replicas" => "0".into(),
            _ => String::new(),
        },
    }
}

impl Selector {
    /// Parses the two query parameters for objects of `info`.
    pub fn parse(
        info: &ResourceInfo,
        label: Option<&str>,
        field: Option<&str>,
    ) -> Result<Selector, ApiError> {
        let mut sel = Selector::default();
        if let Some(l) = label.map(str::trim).filter(|l| !l.is_empty()) {
            for part in split_top(l) {
                if part.trim().is_empty() {
                    return Err(label_err(l, "found '', expected: identifier"));
                }
                sel.labels.push(parse_label_req(l, part)?);
            }
        }
        if let Some(f) = field.map(str::trim).filter(|f| !f.is_empty()) {
            for part in f.split(',') {
                let part = part.trim();
                let (field, value, negate) = if let Some((k, v)) = part.split_once("!=") {
                    (k, v, true)
                } else if let Some((k, v)) = part.split_once("==") {
                    (k, v, false)
                } else if let Some((k, v)) = part.split_once('=') {
                    (k, v, false)
                } else {
                    return Err(ApiError::bad_request(format!(
                        "invalid field selector: {part:?}: expected '=', '==' or '!='"
                    )));
                };
                let field = field.trim();
                if field != "metadata.name"
                    && field != "metadata.namespace"
                    && !extra_fields(info.kind).contains(&field)
                {
                    return Err(ApiError::bad_request(format!(
                        "field label not supported: {field}"
                    )));
                }
                sel.fields.push(FieldReq {
                    field: field.to_string(),
                    value: value.trim().to_string(),
                    negate,
                });
            }
        }
        Ok(sel)
    }

    /// Whether both selectors are empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }

    /// The single `metadata.name=X` the field selector pins, if any (for single-object
    /// watches).
    pub fn pinned_name(&self) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.field == "metadata.name" && !f.negate)
            .map(|f| f.value.as_str())
    }

    /// Whether `obj` matches.
    pub fn matches(&self, obj: &Value) -> bool {
        if self.is_empty() {
            return true;
        }
        let labels = obj.pointer("/metadata/labels").and_then(Value::as_object);
        let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        for r in &self.labels {
            let ok = match r {
                LabelReq::Eq(k, v) => label(k) == Some(v.as_str()),
                LabelReq::NotEq(k, v) => label(k) != Some(v.as_str()),
                LabelReq::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
                LabelReq::NotIn(k, vs) => label(k).is_none_or(|l| !vs.iter().any(|v| v == l)),
                LabelReq::Exists(k) => label(k).is_some(),
                LabelReq::NotExists(k) => label(k).is_none(),
                LabelReq::Gt(k, n) => label(k)
                    .and_then(|l| l.parse::<i64>().ok())
                    .is_some_and(|l| l > *n),
                LabelReq::Lt(k, n) => label(k)
                    .and_then(|l| l.parse::<i64>().ok())
                    .is_some_and(|l| l < *n),
            };
            if !ok {
                return false;
            }
        }
        self.fields
            .iter()
            .all(|f| (field_value(obj, &f.field) == f.value) != f.negate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::tests::info;
    use serde_json::json;

    #[test]
    fn labels() {
        let pod =
            json!({"metadata": {"name": "a", "labels": {"app": "web", "tier": "fe", "n": "5"}}});
        let m = |s: &str| {
            Selector::parse(info("Pod"), Some(s), None)
                .unwrap()
                .matches(&pod)
        };
        assert!(m("app=web"));
        assert!(m("app==web,tier"));
        assert!(!m("app!=web"));
        assert!(m("app in (web, db),tier notin (be)"));
        assert!(!m("!tier"));
        assert!(m("!nope"));
        assert!(m("n>4"));
        assert!(!m("n<4"));
        assert!(Selector::parse(info("Pod"), Some("app in web"), None).is_err());
        assert!(Selector::parse(info("Pod"), Some("a b=c"), None).is_err());
    }

    #[test]
    fn fields() {
        let pod = json!({"metadata": {"name": "a", "namespace": "d"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        let p = info("Pod");
        let m = |s: &str| Selector::parse(p, None, Some(s)).unwrap().matches(&pod);
        assert!(m(
            "spec.nodeName=n1,status.phase!=Succeeded,status.phase!=Failed"
        ));
        assert!(!m("metadata.name=b"));
        assert!(m("metadata.namespace==d"));
        assert!(m("spec.hostNetwork=false"));
        assert!(Selector::parse(p, None, Some("spec.foo=x")).is_err());
        let ev = json!({"involvedObject": {"uid": "u", "name": "x", "namespace": ""}, "source": {"component": "kubelet"}});
        let e = info("Event");
        let s = Selector::parse(e, None, Some("involvedObject.uid=u,involvedObject.name=x,involvedObject.namespace=,source=kubelet")).unwrap();
        assert!(s.matches(&ev));
        assert_eq!(
            Selector::parse(p, None, Some("metadata.name=x"))
                .unwrap()
                .pinned_name(),
            Some("x")
        );
    }
}
