//! `serviceaccounts`: upstream `printServiceAccount`.

use serde_json::Value;

use super::{AGE, Column, NAME, Rows, col};

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col(
        "Secrets",
        "string",
        "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use. Pods are only limited to this list if this service account has a \"kubernetes.io/enforce-mountable-secrets\" annotation set to \"true\". The \"kubernetes.io/enforce-mountable-secrets\" annotation is deprecated since v1.32. Prefer separate namespaces to isolate access to mounted secrets. This field should not be used to find auto-generated service account token secrets for use outside of pods. Instead, tokens can be requested directly using the TokenRequest API, or service account token secrets can be manually created. More info: https://kubernetes.io/docs/concepts/configuration/secret",
    ),
    AGE,
];

/// Upstream `printServiceAccount`: the number of `secrets`.
pub(super) fn row(p: &Rows, obj: &Value) -> Vec<Value> {
    let n = obj["secrets"].as_array().map_or(0, Vec::len) as i64;
    p.named(obj, [n.into()])
}
