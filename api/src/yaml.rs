//! YAML as Kubernetes reads it. kubectl and kube-apiserver turn YAML into JSON with
//! sigs.k8s.io/yaml, whose resolver is go-yaml v2's (YAML 1.1): a plain `0400` is the octal
//! integer 256 (the spelling every `defaultMode: 0400` in the Kubernetes docs relies on),
//! `0x1F` is 31, `1_000` is 1000, and `yes`/`no`/`on`/`off` are booleans. serde-saphyr reads
//! YAML 1.2 unless told otherwise, where `0400` is not octal; every YAML paddock decodes
//! (manifests, request bodies, apply patches) goes through here so that they agree.

use serde_json::Value;

/// serde-saphyr's options for YAML 1.1 scalars as go-yaml v2 resolves them (its other
/// defaults, including the limits against alias bombs and oversized input, stay).
pub fn options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.legacy_octal_numbers = true;
    options
}

/// One YAML document as JSON.
pub fn from_str(text: &str) -> Result<Value, serde_saphyr::Error> {
    serde_saphyr::from_str_with_options(text, options())
}

/// Every document of a YAML stream as JSON.
pub fn from_multiple(text: &str) -> Result<Vec<Value>, serde_saphyr::Error> {
    serde_saphyr::from_multiple_with_options(text, options())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_resolve_as_go_yaml_v2_does() {
        let v = from_str(
            "octal: 0400\nexec: 0755\nprefixed: 0o17\nhex: 0x1F\nunderscored: 1_000\n\
             zero: 0\nplain: 420\nquoted: \"0400\"\nyes: yes\noff: off\nfloat: 1.5\n",
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"octal": 256, "exec": 493, "prefixed": 15, "hex": 31, "underscored": 1000,
                   "zero": 0, "plain": 420, "quoted": "0400", "yes": true, "off": false,
                   "float": 1.5})
        );
        let docs = from_multiple("a: 0644\n---\nb: 0600\n").unwrap();
        assert_eq!(docs, [json!({"a": 420}), json!({"b": 384})]);
    }
}
