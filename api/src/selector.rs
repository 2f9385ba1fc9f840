//! Label selectors (`k8s.io/apimachinery/pkg/labels`: parse, match, print) and field
//! selectors (`k8s.io/apimachinery/pkg/fields` plus each kind's supported field labels, from
//! the `AddFieldLabelConversionFunc`s and registry `GetAttrs` of upstream).
//!
//! [`LabelSelector::parse`] reads the string form (`app=web,tier in (a,b),!canary`);
//! [`LabelSelector::from_k8s`] (or [`LabelSelector::from_json`]) converts a typed
//! `metav1.LabelSelector` and its `Display` is upstream's `Selector.String()`;
//! [`format_label_selector`] is `metav1.FormatLabelSelector`, the one string form the API
//! server's tables and Scale subresource print. [`FieldSelector::parse`] checks field names
//! against the resource.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as K8sSelector;
use serde_json::Value;

use crate::registry::ResourceInfo;
use crate::status::{ApiError, FieldError};
use crate::validation::{is_qualified_name, is_valid_label_value};

/// A label selector operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operator {
    /// `key=value`.
    Equals,
    /// `key==value`.
    DoubleEquals,
    /// `key!=value`.
    NotEquals,
    /// `key in (a,b)`.
    In,
    /// `key notin (a,b)`.
    NotIn,
    /// `key`.
    Exists,
    /// `!key`.
    DoesNotExist,
    /// `key>n` (integers).
    GreaterThan,
    /// `key<n` (integers).
    LessThan,
}

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// Label key.
    pub key: String,
    /// Operator.
    pub op: Operator,
    /// Values, sorted, empty for Exists/DoesNotExist. Deduplicated when parsed from the string
    /// form (upstream's parser collects a set); kept as given from a typed selector, as
    /// upstream `LabelSelectorAsSelector` keeps them (`k in (a,a)` prints both).
    pub values: Vec<String>,
}

impl Requirement {
    fn new(key: String, op: Operator, values: Vec<String>) -> Result<Self, ApiError> {
        // Upstream `NewRequirement`: every problem as a field error, aggregated.
        let mut errs = Vec::new();
        let key_msgs = is_qualified_name(&key);
        if !key_msgs.is_empty() {
            errs.push(FieldError::invalid(
                "key",
                key.as_str(),
                key_msgs.join("; "),
            ));
        }
        let vals = || serde_json::json!(values);
        match op {
            Operator::In | Operator::NotIn if values.is_empty() => errs.push(FieldError::invalid(
                "values",
                vals(),
                "for 'in', 'notin' operators, values set can't be empty",
            )),
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals
                if values.len() != 1 =>
            {
                errs.push(FieldError::invalid(
                    "values",
                    vals(),
                    "exact-match compatibility requires one single value",
                ));
            }
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
                errs.push(FieldError::invalid(
                    "values",
                    vals(),
                    "values set must be empty for exists and does not exist",
                ));
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errs.push(FieldError::invalid(
                        "values",
                        vals(),
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(FieldError::invalid(
                            format!("values[{i}]"),
                            v.as_str(),
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ));
                    }
                }
            }
            _ => {}
        }
        for (i, v) in values.iter().enumerate() {
            let msgs = is_valid_label_value(v);
            if !msgs.is_empty() {
                errs.push(FieldError::invalid(
                    format!("values[{i}][{key}]"),
                    v.as_str(),
                    msgs.join("; "),
                ));
            }
        }
        if !errs.is_empty() {
            return Err(ApiError::bad_request(format!(
                "unable to parse requirement: {}",
                crate::status::aggregate(&errs)
            )));
        }
        let mut values = values;
        values.sort_unstable();
        Ok(Self { key, op, values })
    }

    /// Whether `labels` satisfy this requirement (upstream `Requirement.Matches`).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let got = labels.get(&self.key);
        match self.op {
            Operator::Equals | Operator::DoubleEquals | Operator::In => {
                got.is_some_and(|v| self.values.contains(v))
            }
            Operator::NotEquals | Operator::NotIn => got.is_none_or(|v| !self.values.contains(v)),
            Operator::Exists => got.is_some(),
            Operator::DoesNotExist => got.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(v), Some(want)) = (got, self.values.first()) else {
                    return false;
                };
                let (Ok(v), Ok(want)) = (v.parse::<i64>(), want.parse::<i64>()) else {
                    return false;
                };
                if self.op == Operator::GreaterThan {
                    v > want
                } else {
                    v < want
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.values.join(",");
        match self.op {
            Operator::Equals => write!(f, "{}={v}", self.key),
            Operator::DoubleEquals => write!(f, "{}=={v}", self.key),
            Operator::NotEquals => write!(f, "{}!={v}", self.key),
            Operator::In => write!(f, "{} in ({v})", self.key),
            Operator::NotIn => write!(f, "{} notin ({v})", self.key),
            Operator::Exists => write!(f, "{}", self.key),
            Operator::DoesNotExist => write!(f, "!{}", self.key),
            Operator::GreaterThan => write!(f, "{}>{v}", self.key),
            Operator::LessThan => write!(f, "{}<{v}", self.key),
        }
    }
}

/// A parsed label selector: requirements ANDed, sorted by key as upstream keeps them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    /// The requirements, sorted by key.
    pub requirements: Vec<Requirement>,
}

/// Longest selector string accepted (against abuse; far beyond real selectors).
const MAX_SELECTOR_LEN: usize = 64 * 1024;

impl LabelSelector {
    /// Parses the string form (upstream `labels.Parse`); errors are 400 BadRequest.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        if s.len() > MAX_SELECTOR_LEN {
            return Err(ApiError::bad_request("label selector is too long"));
        }
        let tokens = lex(s)?;
        let mut p = Parser { tokens, pos: 0 };
        let mut reqs = Vec::new();
        if p.peek() == &Token::End {
            return Ok(Self::default());
        }
        loop {
            reqs.push(p.requirement()?);
            match p.next() {
                Token::Comma => {}
                Token::End => break,
                t => {
                    return Err(ApiError::bad_request(format!(
                        "found '{}', expected: ',' or 'end of string'",
                        t.text()
                    )));
                }
            }
        }
        reqs.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Self { requirements: reqs })
    }

    /// Converts a typed selector (upstream `LabelSelectorAsSelector`): matchLabels become
    /// `key=value`, expressions In/NotIn/Exists/DoesNotExist. An absent selector matches nothing
    /// upstream; callers check that separately. An empty one matches everything.
    pub fn from_k8s(sel: &K8sSelector) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for (k, v) in sel.match_labels.iter().flatten() {
            reqs.push(Requirement::new(
                k.clone(),
                Operator::Equals,
                vec![v.clone()],
            )?);
        }
        for e in sel.match_expressions.iter().flatten() {
            let op = match e.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    return Err(ApiError::bad_request(format!(
                        "{} is not a valid label selector operator",
                        crate::status::go_quote(other)
                    )));
                }
            };
            reqs.push(Requirement::new(
                e.key.clone(),
                op,
                e.values.clone().unwrap_or_default(),
            )?);
        }
        reqs.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Self { requirements: reqs })
    }

    /// The selector of a plain label map (a ReplicationController's or a Service's
    /// `spec.selector`: `labels.SelectorFromSet`).
    pub fn from_map(labels: &BTreeMap<String, String>) -> Result<Self, ApiError> {
        Self::from_k8s(&K8sSelector {
            match_labels: Some(labels.clone()),
            match_expressions: None,
        })
    }

    /// [`Self::from_k8s`] over the JSON form of a `metav1.LabelSelector`; an absent (null)
    /// selector gives the empty one, whose string form is `""` as upstream's `Nothing()` prints.
    pub fn from_json(sel: &Value) -> Result<Self, ApiError> {
        if sel.is_null() {
            return Ok(Self::default());
        }
        let typed: K8sSelector = serde_json::from_value(sel.clone())
            .map_err(|e| ApiError::bad_request(format!("invalid label selector: {e}")))?;
        Self::from_k8s(&typed)
    }

    /// Whether every requirement matches `labels`.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Whether the object's `metadata.labels` match.
    pub fn matches_value(&self, obj: &Value) -> bool {
        if self.is_empty() {
            return true;
        }
        let labels: BTreeMap<String, String> = obj
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        self.matches(&labels)
    }

    /// Whether the selector has no requirements (matches everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// Upstream `metav1.FormatLabelSelector` over the JSON form: the selector's string form
/// (`LabelSelectorAsSelector(sel).String()`), `<none>` when it has no requirements or is absent,
/// `<error>` when it is not a valid selector.
pub fn format_label_selector(sel: &Value) -> String {
    match LabelSelector::from_json(sel) {
        Ok(s) if s.is_empty() => "<none>".into(),
        Ok(s) => s.to_string(),
        Err(_) => "<error>".into(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Comma,
    Eq,
    DoubleEq,
    NotEq,
    Not,
    Gt,
    Lt,
    Open,
    Close,
    In,
    NotIn,
    End,
}

impl Token {
    fn text(&self) -> String {
        match self {
            Token::Ident(s) => s.clone(),
            Token::Comma => ",".into(),
            Token::Eq => "=".into(),
            Token::DoubleEq => "==".into(),
            Token::NotEq => "!=".into(),
            Token::Not => "!".into(),
            Token::Gt => ">".into(),
            Token::Lt => "<".into(),
            Token::Open => "(".into(),
            Token::Close => ")".into(),
            Token::In => "in".into(),
            Token::NotIn => "notin".into(),
            Token::End => "end of string".into(),
        }
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '!' | '=' | '>' | '<' | '(' | ')' | ',')
}

fn lex(s: &str) -> Result<Vec<Token>, ApiError> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if is_special(c) {
            let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let (tok, len) = match two.as_str() {
                "==" => (Token::DoubleEq, 2),
                "!=" => (Token::NotEq, 2),
                _ => match c {
                    '=' => (Token::Eq, 1),
                    '!' => (Token::Not, 1),
                    '>' => (Token::Gt, 1),
                    '<' => (Token::Lt, 1),
                    '(' => (Token::Open, 1),
                    ')' => (Token::Close, 1),
                    _ => (Token::Comma, 1),
                },
            };
            out.push(tok);
            i += len;
            continue;
        }
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() && !is_special(chars[i]) {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        out.push(match word.as_str() {
            "in" => Token::In,
            "notin" => Token::NotIn,
            _ => Token::Ident(word),
        });
    }
    out.push(Token::End);
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        self.tokens.get(self.pos).unwrap_or(&Token::End)
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        self.pos += 1;
        t
    }

    fn expected(t: &Token, what: &str) -> ApiError {
        ApiError::bad_request(format!("found '{}', expected: {what}", t.text()))
    }

    fn requirement(&mut self) -> Result<Requirement, ApiError> {
        let negated = if self.peek() == &Token::Not {
            self.next();
            true
        } else {
            false
        };
        let key = match self.next() {
            Token::Ident(k) => k,
            // `in`/`notin` are valid label keys when used as keys.
            Token::In => "in".to_string(),
            Token::NotIn => "notin".to_string(),
            t => return Err(Self::expected(&t, "identifier")),
        };
        if negated {
            return Requirement::new(key, Operator::DoesNotExist, Vec::new());
        }
        let op = match self.peek() {
            Token::Comma | Token::End => {
                return Requirement::new(key, Operator::Exists, Vec::new());
            }
            Token::Eq => Operator::Equals,
            Token::DoubleEq => Operator::DoubleEquals,
            Token::NotEq => Operator::NotEquals,
            Token::Gt => Operator::GreaterThan,
            Token::Lt => Operator::LessThan,
            Token::In => Operator::In,
            Token::NotIn => Operator::NotIn,
            t => {
                return Err(Self::expected(t, "in, notin, =, ==, !=, gt, lt"));
            }
        };
        self.next();
        let values = match op {
            Operator::In | Operator::NotIn => self.value_set()?,
            _ => match self.peek().clone() {
                Token::Ident(v) => {
                    self.next();
                    vec![v]
                }
                Token::In | Token::NotIn => vec![self.next().text()],
                // `key=` means the empty value.
                Token::Comma | Token::End => vec![String::new()],
                t => return Err(Self::expected(&t, "identifier")),
            },
        };
        Requirement::new(key, op, values)
    }

    fn value_list(&mut self) -> Result<Vec<String>, ApiError> {
        let t = self.next();
        if t != Token::Open {
            return Err(Self::expected(&t, "'('"));
        }
        let mut values = Vec::new();
        let mut expect_value = true;
        loop {
            match self.next() {
                Token::Close => {
                    // `()` is the set {""}, and `(a,)` is {"a", ""}, as upstream parses them.
                    if expect_value {
                        values.push(String::new());
                    }
                    return Ok(values);
                }
                Token::Comma => {
                    if expect_value {
                        values.push(String::new());
                    }
                    expect_value = true;
                }
                Token::Ident(v) if expect_value => {
                    values.push(v);
                    expect_value = false;
                }
                t @ (Token::In | Token::NotIn) if expect_value => {
                    values.push(t.text());
                    expect_value = false;
                }
                t => return Err(Self::expected(&t, "',', ')' or identifier")),
            }
        }
    }

    /// [`Self::value_list`] as upstream's `parseValues` returns it: a set.
    fn value_set(&mut self) -> Result<Vec<String>, ApiError> {
        let values: BTreeSet<String> = self.value_list()?.into_iter().collect();
        Ok(values.into_iter().collect())
    }
}

/// A field selector term operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldOp {
    /// `field=value` or `field==value`.
    Equals,
    /// `field!=value`.
    NotEquals,
}

/// One `field=value` / `field!=value` term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldTerm {
    /// Field label (`spec.nodeName`).
    pub field: String,
    /// Operator.
    pub op: FieldOp,
    /// Value (unescaped).
    pub value: String,
}

/// A parsed field selector, checked against the resource's supported field labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSelector {
    /// The terms, ANDed.
    pub terms: Vec<FieldTerm>,
    kind: &'static str,
}

/// The field labels a kind supports (upstream `AddFieldLabelConversionFunc`s in
/// `pkg/apis/core/v1/conversion.go`, `pkg/apis/apps/v1/conversion.go` and the certificates one; kinds without one
/// get `DefaultMetaV1FieldSelectorConversion`: `metadata.name` and `metadata.namespace`).
pub fn supported_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "Pod" => &[
            "metadata.name",
            "metadata.namespace",
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
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
            "metadata.namespace",
            "metadata.name",
        ],
        "Node" => &["metadata.name", "spec.unschedulable"],
        "Namespace" => &["status.phase", "metadata.name"],
        "Secret" => &["type", "metadata.namespace", "metadata.name"],
        "Service" => &[
            "metadata.namespace",
            "metadata.name",
            "spec.clusterIP",
            "spec.type",
        ],
        "ReplicaSet" | "ReplicationController" => {
            &["metadata.name", "metadata.namespace", "status.replicas"]
        }
        // pkg/apis/certificates/v1/conversion.go.
        "CertificateSigningRequest" => &["metadata.name", "spec.signerName"],
        _ => &["metadata.name", "metadata.namespace"],
    }
}

impl FieldSelector {
    /// Parses `a=b,c!=d` (with `\,` `\=` `\\` escapes), rejecting fields the resource does
    /// not support with upstream's `field label not supported: X` (400).
    pub fn parse(info: &ResourceInfo, s: &str) -> Result<Self, ApiError> {
        if s.len() > MAX_SELECTOR_LEN {
            return Err(ApiError::bad_request("field selector is too long"));
        }
        let mut terms = Vec::new();
        for part in split_unescaped(s, ',') {
            if part.is_empty() {
                continue;
            }
            let (field, op, value) = split_term(&part).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                ))
            })?;
            let mut field = field.trim().to_string();
            // Old v1 clients send `spec.host`; upstream maps it to `spec.nodeName`.
            if info.kind == "Pod" && field == "spec.host" {
                field = "spec.nodeName".to_string();
            }
            if !supported_fields(info.kind).contains(&field.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {field}"
                )));
            }
            terms.push(FieldTerm {
                field,
                op,
                value: unescape(&value),
            });
        }
        Ok(Self {
            terms,
            kind: info.kind,
        })
    }

    /// Whether the object matches every term (missing fields count as `""`).
    pub fn matches(&self, obj: &Value) -> bool {
        self.terms.iter().all(|t| {
            let got = field_value(self.kind, obj, &t.field);
            match t.op {
                FieldOp::Equals => got == t.value,
                FieldOp::NotEquals => got != t.value,
            }
        })
    }

    /// The value required by an `=` term on `field` (e.g. `metadata.name`), for lookups
    /// that can avoid a full scan.
    pub fn exact(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.field == field && t.op == FieldOp::Equals)
            .map(|t| t.value.as_str())
    }

    /// Whether there are no terms.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}

/// The string value of a field label on an object, as upstream's `GetAttrs` computes it.
pub fn field_value(kind: &str, obj: &Value, field: &str) -> String {
    let scalar = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    match (kind, field) {
        ("Pod", "spec.hostNetwork") => {
            (obj.pointer("/spec/hostNetwork").and_then(Value::as_bool) == Some(true)).to_string()
        }
        ("Node", "spec.unschedulable") => {
            (obj.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true)).to_string()
        }
        ("Pod", "status.podIPs") => obj
            .pointer("/status/podIPs")
            .and_then(Value::as_array)
            .map(|ips| {
                ips.iter()
                    .filter_map(|ip| ip.get("ip").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default(),
        ("ReplicaSet" | "ReplicationController", "status.replicas") => obj
            .pointer("/status/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .to_string(),
        ("Event", "source") => {
            let component = scalar(obj.pointer("/source/component"));
            if component.is_empty() {
                scalar(obj.get("reportingComponent"))
            } else {
                component
            }
        }
        _ => {
            let pointer = format!("/{}", field.replace('.', "/"));
            scalar(obj.pointer(&pointer))
        }
    }
}

fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push('\\');
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    if escaped {
        cur.push('\\');
    }
    out.push(cur);
    out
}

fn split_term(term: &str) -> Option<(String, FieldOp, String)> {
    // Find the first unescaped operator: `!=`, `==`, `=`.
    let chars: Vec<char> = term.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '!' if chars.get(i + 1) == Some(&'=') => {
                return Some((
                    chars[..i].iter().collect(),
                    FieldOp::NotEquals,
                    chars[i + 2..].iter().collect(),
                ));
            }
            '=' => {
                let skip = if chars.get(i + 1) == Some(&'=') { 2 } else { 1 };
                return Some((
                    chars[..i].iter().collect(),
                    FieldOp::Equals,
                    chars[i + skip..].iter().collect(),
                ));
            }
            _ => i += 1,
        }
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests;
