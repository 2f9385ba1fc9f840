//! Query parameters and request headers as the handlers need them: Go `ParseBool`
//! spellings, the `Accept` negotiation for JSON vs `Table`, and the `DeleteOptions` body.

use api::status::ApiError;
use percent_encoding::percent_decode_str;
use serde_json::Value;

use crate::registry::{DeleteOptions, Propagation};

/// Decoded query parameters, in order (repeated keys kept).
#[derive(Debug, Clone, Default)]
pub struct Query(Vec<(String, String)>);

fn decode(s: &str) -> String {
    let plus = s.replace('+', " ");
    percent_decode_str(&plus).decode_utf8_lossy().into_owned()
}

impl Query {
    /// Parses a raw query string (`a=1&b=x%3Dy`).
    pub fn parse(raw: Option<&str>) -> Query {
        let mut out = Vec::new();
        for part in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            out.push((decode(k), decode(v)));
        }
        Query(out)
    }

    /// All pairs, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean parameter in Go `strconv.ParseBool` spellings; absent = `false`.
    pub fn bool(&self, key: &str) -> Result<bool, ApiError> {
        match self.get(key) {
            None => Ok(false),
            Some(v) => parse_bool(v).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "invalid boolean value {v:?} for query parameter {key}"
                ))
            }),
        }
    }

    /// An integer parameter; absent = `None`.
    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid integer value {v:?} for query parameter {key}"
                ))
            }),
        }
    }

    /// `dryRun`: only `All` is valid (upstream), empty means none.
    pub fn dry_run(&self) -> Result<bool, ApiError> {
        let vals: Vec<&str> = self
            .0
            .iter()
            .filter(|(k, _)| k == "dryRun")
            .map(|(_, v)| v.as_str())
            .collect();
        for v in &vals {
            if *v != "All" && !v.is_empty() {
                return Err(ApiError::bad_request(format!(
                    "Invalid dryRun value: {v:?}: supported values: \"All\""
                )));
            }
        }
        Ok(vals.contains(&"All"))
    }
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// What the client accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// A `meta.k8s.io/<version>` Table.
    Table(&'static str),
    /// Plain JSON objects.
    Json,
}

/// Negotiates JSON or Table from `Accept`, in the client's order. Protobuf-first and
/// unknown types fall through to JSON when JSON is also accepted; `None` when nothing we
/// serve is acceptable.
pub fn negotiate(accept: Option<&str>) -> Option<Output> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Some(Output::Json);
    };
    let mut json_ok = false;
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let ty = parts.next().unwrap_or("").to_ascii_lowercase();
        let params: Vec<(String, String)> = parts
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let get = |k: &str| {
            params
                .iter()
                .find(|(pk, _)| pk == k)
                .map(|(_, v)| v.as_str())
        };
        let json_like = matches!(ty.as_str(), "application/json" | "*/*" | "application/*");
        if !json_like {
            continue;
        }
        match get("as") {
            Some("Table") => {
                if get("g").is_some_and(|g| g != "meta.k8s.io") {
                    continue;
                }
                match get("v") {
                    Some("v1") | None => return Some(Output::Table("v1")),
                    Some("v1beta1") => return Some(Output::Table("v1beta1")),
                    _ => continue,
                }
            }
            Some(_) => continue,
            None => {
                json_ok = true;
                break;
            }
        }
    }
    json_ok.then_some(Output::Json)
}

/// Delete options from the query and an optional JSON `DeleteOptions` body (the body wins).
pub fn delete_options(q: &Query, body: &[u8]) -> Result<DeleteOptions, ApiError> {
    let mut opts = DeleteOptions {
        grace_period_seconds: q.int("gracePeriodSeconds")?,
        dry_run: q.dry_run()?,
        ..DeleteOptions::default()
    };
    let mut policy = q.get("propagationPolicy").map(str::to_string);
    let mut orphan = match q.get("orphanDependents") {
        Some(v) => parse_bool(v),
        None => None,
    };
    if body.iter().any(|b| !b.is_ascii_whitespace()) {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?;
        if !v.is_object() {
            return Err(ApiError::bad_request(
                "invalid DeleteOptions: not an object",
            ));
        }
        if let Some(g) = v.get("gracePeriodSeconds").filter(|g| !g.is_null()) {
            opts.grace_period_seconds = Some(g.as_i64().ok_or_else(|| {
                ApiError::bad_request(
                    "invalid DeleteOptions: gracePeriodSeconds must be an integer",
                )
            })?);
        }
        if let Some(p) = v.get("propagationPolicy").and_then(Value::as_str) {
            policy = Some(p.to_string());
        }
        if let Some(o) = v.get("orphanDependents").and_then(Value::as_bool) {
            orphan = Some(o);
        }
        if let Some(pre) = v.get("preconditions") {
            opts.preconditions_uid = pre.get("uid").and_then(Value::as_str).map(str::to_string);
            opts.preconditions_resource_version = pre
                .get("resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        if let Some(dr) = v.get("dryRun").and_then(Value::as_array)
            && dr.iter().any(|d| d == "All")
        {
            opts.dry_run = true;
        }
    }
    if let Some(p) = policy.filter(|p| !p.is_empty()) {
        if orphan.is_some() {
            return Err(invalid_delete_options(
                "propagationPolicy",
                &p,
                "orphanDependents and deletionPropagation cannot be both set",
            ));
        }
        opts.propagation_policy = Some(Propagation::parse(&p).ok_or_else(|| {
            invalid_delete_options(
                "propagationPolicy",
                &p,
                "propagationPolicy must be one of [Foreground Background Orphan], or nil",
            )
        })?);
    } else if let Some(o) = orphan {
        opts.propagation_policy = Some(if o {
            Propagation::Orphan
        } else {
            Propagation::Background
        });
    }
    if let Some(g) = opts.grace_period_seconds
        && g < 0
    {
        opts.grace_period_seconds = Some(0);
    }
    Ok(opts)
}

fn invalid_delete_options(field: &str, value: &str, detail: &str) -> ApiError {
    ApiError::invalid_kind(
        "meta.k8s.io",
        "DeleteOptions",
        "",
        vec![api::status::FieldError::invalid(field, value, detail)],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_bools() {
        let q = Query::parse(Some("watch=True&labelSelector=app%3Dweb&x=a+b&dryRun=All"));
        assert!(q.bool("watch").unwrap());
        assert_eq!(q.get("labelSelector"), Some("app=web"));
        assert_eq!(q.get("x"), Some("a b"));
        assert!(q.dry_run().unwrap());
        assert!(Query::parse(Some("watch=yes")).bool("watch").is_err());
        assert!(!Query::parse(None).bool("watch").unwrap());
        assert!(Query::parse(Some("dryRun=Some")).dry_run().is_err());
    }

    #[test]
    fn accept_negotiation() {
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(negotiate(Some(kubectl)), Some(Output::Table("v1")));
        assert_eq!(
            negotiate(Some("application/vnd.kubernetes.protobuf,application/json")),
            Some(Output::Json)
        );
        assert_eq!(negotiate(Some("application/json, */*")), Some(Output::Json));
        assert_eq!(negotiate(None), Some(Output::Json));
        assert_eq!(negotiate(Some("application/vnd.kubernetes.protobuf")), None);
    }

    #[test]
    fn delete_options_body_and_query() {
        let q = Query::parse(Some("gracePeriodSeconds=5"));
        let o = delete_options(&q, br#"{"propagationPolicy":"Foreground"}"#).unwrap();
        assert_eq!(o.grace_period_seconds, Some(5));
        assert_eq!(o.propagation_policy, Some(Propagation::Foreground));
        let o = delete_options(&Query::default(), b"").unwrap();
        assert_eq!(o.propagation_policy, None);
        assert!(delete_options(&Query::default(), b"{nope").is_err());
        let e = delete_options(&Query::default(), br#"{"propagationPolicy":"Bogus"}"#).unwrap_err();
        assert_eq!(e.code, 422);
    }
}
