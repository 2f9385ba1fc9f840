//! `kubectl get` in every output form, and `get -w`.

use crate::fixtures::RESOURCES;
use crate::support::{Streaming, loaded};

#[test]
fn get_every_resource_in_every_output_form() {
    let (s, _d) = loaded();
    for res in RESOURCES {
        let plain = s.kubectl(&["get", res, "-A"]);
        let header = plain.lines().next().unwrap_or_default();
        assert!(
            header.starts_with("NAMESPACE")
                || header.starts_with("NAME")
                || header.starts_with("LAST SEEN"),
            "{res}: unexpected header {header:?}\n{plain}"
        );
        let wide = s.kubectl(&["get", res, "-A", "-o", "wide"]);
        assert!(
            wide.lines().next().unwrap().len() >= header.len(),
            "{res}: wide is not wider\n{wide}"
        );
        let list = s.get_json(&["get", res, "-A"]);
        assert_eq!(list["kind"], "List", "{res}");
        let items = list["items"].as_array().unwrap();
        assert!(!items.is_empty(), "{res}: no items");
        for item in items {
            assert!(
                item["kind"].is_string() && item["apiVersion"].is_string(),
                "{res}: {item}"
            );
            assert!(item["metadata"]["uid"].is_string(), "{res}: uid");
            assert!(
                item["metadata"]["creationTimestamp"].is_string(),
                "{res}: creationTimestamp"
            );
            assert!(
                item["metadata"]["resourceVersion"].is_string(),
                "{res}: resourceVersion"
            );
        }
        let yaml = s.kubectl(&["get", res, "-A", "-o", "yaml"]);
        assert!(
            yaml.starts_with("apiVersion: v1\nitems:\n"),
            "{res}: {yaml}"
        );
        let names = s.kubectl(&["get", res, "-A", "-o", "name"]);
        assert!(names.lines().all(|l| l.contains('/')), "{res}: {names}");
        // Events (and leases) keep coming while the test runs: the two reads agree once
        // nothing was added between them.
        s.eventually(
            &format!("{res}: -o name and -o json list the same objects"),
            || {
                let names = s.kubectl(&["get", res, "-A", "-o", "name"]);
                let list = s.get_json(&["get", res, "-A"]);
                let items = list["items"].as_array().map_or(0, Vec::len);
                (names.lines().count() == items).then_some(())
            },
        );
    }
}

#[test]
fn get_pods_columns_namespaces_labels_and_sorting() {
    let (s, _d) = loaded();
    let out = s.kubectl(&["get", "pods"]);
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0][0..4], ["alpha", "0/1", "Pending", "0"]);

    let wide = s.kubectl(&["get", "pods", "-o", "wide"]);
    let header: Vec<&str> = wide.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED",
            "NODE",
            "READINESS",
            "GATES"
        ]
    );

    let all = s.kubectl(&["get", "pods", "-A"]);
    assert!(
        all.lines()
            .any(|l| l.starts_with("team-a") && l.contains("gamma")),
        "{all}"
    );
    assert!(
        all.lines()
            .any(|l| l.starts_with("default") && l.contains("alpha")),
        "{all}"
    );

    let web = s.kubectl(&["get", "pods", "-A", "-l", "app=web", "-o", "name"]);
    assert_eq!(web.lines().collect::<Vec<_>>(), ["pod/alpha", "pod/gamma"]);
    let not_web = s.kubectl(&["get", "pods", "-l", "app!=web,app", "-o", "name"]);
    assert_eq!(not_web.trim(), "pod/beta");

    let labels = s.kubectl(&["get", "pods", "--show-labels"]);
    assert!(
        labels.lines().next().unwrap().ends_with("LABELS"),
        "{labels}"
    );
    assert!(labels.contains("app=web,tier=front"), "{labels}");

    let sorted = s.kubectl(&[
        "get",
        "pods",
        "-A",
        "--sort-by",
        ".metadata.name",
        "-o",
        "name",
    ]);
    assert_eq!(
        sorted.lines().collect::<Vec<_>>(),
        ["pod/alpha", "pod/beta", "pod/gamma"]
    );
    let by_label = s.kubectl(&[
        "get",
        "pods",
        "--sort-by",
        ".metadata.labels.app",
        "-o",
        "name",
    ]);
    assert_eq!(
        by_label.lines().collect::<Vec<_>>(),
        ["pod/beta", "pod/alpha"]
    );

    let one = s.kubectl(&["get", "pod", "beta"]);
    assert_eq!(one.lines().count(), 2, "{one}");
    let field = s.kubectl(&[
        "get",
        "pods",
        "-A",
        "--field-selector",
        "metadata.namespace=team-a",
        "-o",
        "name",
    ]);
    assert_eq!(field.trim(), "pod/gamma");

    let chunked = s.kubectl(&["get", "pods", "-A", "--chunk-size=1", "-o", "name"]);
    assert_eq!(chunked.lines().count(), 3, "{chunked}");

    let all_cat = s.kubectl(&["get", "all"]);
    for want in [
        "pod/alpha",
        "service/web",
        "deployment.apps/api",
        "replicaset.apps/worker",
    ] {
        assert!(all_cat.contains(want), "get all lacks {want}:\n{all_cat}");
    }
}

#[test]
fn get_watch_list_prints_each_change_once() {
    let (s, _d) = loaded();
    let mut w = Streaming::spawn(s.kubectl_cmd(&["get", "configmaps", "-w", "--no-headers"]));
    w.wait_for("initial settings row", |l| l.starts_with("settings"));
    s.kubectl_in(
        &["create", "-f", "-"],
        Some("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c1\"}}"),
    );
    w.wait_for("c1 added", |l| l.starts_with("c1 "));
    s.kubectl(&["label", "configmap", "c1", "x=y"]);
    s.kubectl_in(
        &["create", "-f", "-"],
        Some("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"sentinel\"}}"),
    );
    w.wait_for("sentinel", |l| l.starts_with("sentinel"));
    let c1_rows = w.seen.iter().filter(|l| l.starts_with("c1 ")).count();
    assert_eq!(c1_rows, 2, "created + labelled, each once: {:#?}", w.seen);
    let settings_rows = w.seen.iter().filter(|l| l.starts_with("settings")).count();
    assert_eq!(
        settings_rows, 1,
        "no replay of unchanged objects: {:#?}",
        w.seen
    );
}

#[test]
fn get_watch_single_object_prints_later_changes_once() {
    let (s, _d) = loaded();
    let mut w = Streaming::spawn(s.kubectl_cmd(&[
        "get",
        "configmap",
        "settings",
        "-w",
        "-o",
        "jsonpath={.metadata.labels.step}{\"\\n\"}",
    ]));
    // The first line is the current state (no label yet: empty line).
    w.wait_for("initial", |_| true);
    s.kubectl(&["label", "configmap", "settings", "step=one"]);
    w.wait_for("one", |l| l == "one");
    s.kubectl(&["label", "--overwrite", "configmap", "settings", "step=two"]);
    w.wait_for("two", |l| l == "two");
    assert_eq!(w.seen, ["", "one", "two"], "each change exactly once");
}
