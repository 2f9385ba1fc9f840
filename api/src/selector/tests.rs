use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::registry::{by_kind, lookup};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn parse_and_match() {
    let s = LabelSelector::parse("tier in (b, a),app=web,!canary,env!=prod,x").unwrap();
    assert_eq!(s.to_string(), "app=web,!canary,env!=prod,tier in (a,b),x");
    assert!(s.matches(&labels(&[("app", "web"), ("tier", "a"), ("x", "")])));
    assert!(!s.matches(&labels(&[
        ("app", "web"),
        ("tier", "a"),
        ("x", ""),
        ("canary", "1")
    ])));
    assert!(!s.matches(&labels(&[("app", "web"), ("tier", "c"), ("x", "")])));
    assert!(!s.matches(&labels(&[
        ("app", "web"),
        ("tier", "a"),
        ("x", ""),
        ("env", "prod")
    ])));
    assert!(LabelSelector::parse("").unwrap().is_empty());
    assert!(
        LabelSelector::parse("a=")
            .unwrap()
            .matches(&labels(&[("a", "")]))
    );
    assert!(
        LabelSelector::parse("a notin (x)")
            .unwrap()
            .matches(&labels(&[]))
    );
    let gt = LabelSelector::parse("n>5").unwrap();
    assert!(gt.matches(&labels(&[("n", "6")])));
    assert!(!gt.matches(&labels(&[("n", "5")])));
    assert!(
        LabelSelector::parse("a==b")
            .unwrap()
            .matches(&labels(&[("a", "b")]))
    );
}

#[test]
fn parse_errors_are_bad_requests() {
    assert_eq!(
        LabelSelector::parse("a in ()").unwrap().to_string(),
        "a in ()"
    );
    for bad in [
        "a b", "=x", "a in x", "a in (", "a=b=c", "a=b c", "-bad=x", "a=-x-", "n>x",
    ] {
        let e = LabelSelector::parse(bad).unwrap_err();
        assert_eq!(e.code, 400, "{bad}");
    }
    assert_eq!(
        LabelSelector::parse("n>x").unwrap_err().message,
        "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' operators, the value must be an integer"
    );
    assert!(
        LabelSelector::parse("app=-x-").unwrap_err().message.starts_with(
            "unable to parse requirement: values[0][app]: Invalid value: \"-x-\": a valid label must be an empty string"
        )
    );
    assert_eq!(
        LabelSelector::parse("a b").unwrap_err().message,
        "found 'b', expected: in, notin, =, ==, !=, gt, lt"
    );
}

#[test]
fn from_k8s_and_matches_value() {
    let sel: K8sSelector = serde_json::from_value(json!({
        "matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}, {"key": "old", "operator": "DoesNotExist"}]
    }))
    .unwrap();
    let s = LabelSelector::from_k8s(&sel).unwrap();
    assert_eq!(s.to_string(), "app=web,!old,tier in (a)");
    assert!(s.matches_value(&json!({"metadata": {"labels": {"app": "web", "tier": "a"}}})));
    assert!(!s.matches_value(&json!({"metadata": {}})));
    let bad: K8sSelector =
        serde_json::from_value(json!({"matchExpressions": [{"key": "a", "operator": "Near"}]}))
            .unwrap();
    assert!(LabelSelector::from_k8s(&bad).is_err());
}

/// `metav1.LabelSelectorAsSelector(sel).String()` and `FormatLabelSelector` over JSON, where the
/// Scale subresource's copy differed from the table's: upstream keeps repeated values of a typed
/// selector (its parser alone collects a set), and an invalid selector is an error, not a
/// shorter string.
#[test]
fn typed_selector_strings() {
    let sel = json!({"matchLabels": {"app": "web", "a": "b"},
        "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev", "prod"]},
                             {"key": "x", "operator": "DoesNotExist"},
                             {"key": "y", "operator": "Exists"}]});
    let parsed = LabelSelector::from_json(&sel).unwrap();
    assert_eq!(
        parsed.to_string(),
        "a=b,app=web,env in (dev,prod,prod),!x,y"
    );
    assert_eq!(
        format_label_selector(&sel),
        "a=b,app=web,env in (dev,prod,prod),!x,y"
    );
    // The string form's parser deduplicates, as upstream's does.
    assert_eq!(
        LabelSelector::parse("env in (prod,dev,prod)")
            .unwrap()
            .to_string(),
        "env in (dev,prod)"
    );
    for empty in [json!(null), json!({}), json!({"matchLabels": {}})] {
        assert_eq!(LabelSelector::from_json(&empty).unwrap().to_string(), "");
        assert_eq!(format_label_selector(&empty), "<none>");
    }
    for bad in [
        json!({"matchExpressions": [{"key": "a", "operator": "Near"}]}),
        json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["v"]}]}),
        json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}),
        json!({"matchLabels": {"bad key!": "x"}}),
        json!({"matchLabels": {"a": 1}}),
        json!("app=web"),
    ] {
        assert!(LabelSelector::from_json(&bad).is_err(), "{bad}");
        assert_eq!(format_label_selector(&bad), "<error>", "{bad}");
    }
}

#[test]
fn field_selectors() {
    let pods = lookup("", "v1", "pods").unwrap();
    let s = FieldSelector::parse(pods, "spec.nodeName=n1,status.phase!=Failed").unwrap();
    let pod = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
    assert!(s.matches(&pod));
    assert!(!s.matches(&json!({"spec": {"nodeName": "n2"}})));
    assert!(
        FieldSelector::parse(pods, "spec.nodeName=")
            .unwrap()
            .matches(&json!({"spec": {}}))
    );
    assert!(
        FieldSelector::parse(pods, "spec.hostNetwork=false")
            .unwrap()
            .matches(&pod)
    );
    let e = FieldSelector::parse(pods, "spec.foo=bar").unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (400, "field label not supported: spec.foo")
    );
    assert_eq!(
        FieldSelector::parse(pods, "nonsense").unwrap_err().code,
        400
    );
    let events = by_kind("v1", "Event").unwrap();
    let s = FieldSelector::parse(
        events,
        "involvedObject.uid=u1,involvedObject.name=x,involvedObject.namespace=,source=kubelet",
    )
    .unwrap();
    assert!(s.matches(
        &json!({"involvedObject": {"uid": "u1", "name": "x"}, "source": {"component": "kubelet"}})
    ));
    assert_eq!(s.exact("involvedObject.uid"), Some("u1"));
    let esc = FieldSelector::parse(pods, r"metadata.name=a\,b").unwrap();
    assert!(esc.matches(&json!({"metadata": {"name": "a,b"}})));
    let nodes = by_kind("v1", "Node").unwrap();
    assert_eq!(
        FieldSelector::parse(nodes, "metadata.namespace=x")
            .unwrap_err()
            .message,
        "field label not supported: metadata.namespace"
    );
    assert!(
        FieldSelector::parse(nodes, "spec.unschedulable=true")
            .unwrap()
            .matches(&json!({"spec": {"unschedulable": true}}))
    );
    let svcs = by_kind("v1", "Service").unwrap();
    assert!(
        FieldSelector::parse(svcs, "spec.type=ClusterIP")
            .unwrap()
            .matches(&json!({"spec": {"type": "ClusterIP"}}))
    );
    let host = FieldSelector::parse(pods, "spec.host=n1").unwrap();
    assert_eq!(host.exact("spec.nodeName"), Some("n1"));
    let ips = FieldSelector::parse(pods, "status.podIPs=10.0.0.1").unwrap();
    assert!(ips.matches(&json!({"status": {"podIPs": [{"ip": "10.0.0.1"}]}})));
    let rs = by_kind("apps/v1", "ReplicaSet").unwrap();
    assert!(
        FieldSelector::parse(rs, "status.replicas=0")
            .unwrap()
            .matches(&json!({}))
    );
}

fn key_strategy() -> impl Strategy<Value = String> {
    "[a-z]([a-z0-9.-]{0,8}[a-z0-9])?(/[a-z]([a-z0-9]{0,6}))?".prop_filter("valid key", |k| {
        crate::validation::is_qualified_name(k).is_empty() && k != "in" && k != "notin"
    })
}

fn value_strategy() -> impl Strategy<Value = String> {
    "([A-Za-z0-9]([A-Za-z0-9_.-]{0,6}[A-Za-z0-9])?)?"
        .prop_filter("not a keyword", |v| v != "in" && v != "notin")
}

fn requirement_strategy() -> impl Strategy<Value = String> {
    (
        key_strategy(),
        0..7usize,
        prop::collection::vec(value_strategy(), 1..4),
    )
        .prop_map(|(k, op, vals)| match op {
            0 => format!("{k}={}", vals[0]),
            1 => format!("{k}!={}", vals[0]),
            2 => format!("{k} in ({})", vals.join(",")),
            3 => format!("{k} notin ({})", vals.join(",")),
            4 => k,
            5 => format!("!{k}"),
            _ => format!("{k}=={}", vals[0]),
        })
}

proptest! {
    #[test]
    fn print_parse_round_trip(reqs in prop::collection::vec(requirement_strategy(), 0..5)) {
        let s = LabelSelector::parse(&reqs.join(",")).unwrap();
        let printed = s.to_string();
        let again = LabelSelector::parse(&printed).unwrap();
        prop_assert_eq!(&again, &s);
        prop_assert_eq!(again.to_string(), printed);
    }

    #[test]
    fn parse_never_panics(s in ".{0,40}") {
        let _ = LabelSelector::parse(&s);
    }
}
