use super::*;

const T0: i64 = 1_700_000_000_000;

/// A node's `/metrics/resource` text at `ts` with the given CPU seconds.
fn scrape(ts: i64, cpu: f64, web_cpu: f64, start: f64) -> String {
    format!(
        "# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds\n\
         # TYPE container_cpu_usage_seconds_total counter\n\
         container_cpu_usage_seconds_total{{container=\"app\",namespace=\"default\",pod=\"web\"}} {web_cpu} {ts}\n\
         container_cpu_usage_seconds_total{{container=\"side\",namespace=\"default\",pod=\"web\"}} 0.5 {ts}\n\
         container_memory_working_set_bytes{{container=\"app\",namespace=\"default\",pod=\"web\"}} 2.097152e+06 {ts}\n\
         container_memory_working_set_bytes{{container=\"side\",namespace=\"default\",pod=\"web\"}} 1048576 {ts}\n\
         container_start_time_seconds{{container=\"app\",namespace=\"default\",pod=\"web\"}} {start}\n\
         container_start_time_seconds{{container=\"side\",namespace=\"default\",pod=\"web\"}} {start}\n\
         node_cpu_usage_seconds_total {cpu} {ts}\n\
         node_memory_working_set_bytes 1.073741824e+09 {ts}\n\
         scrape_error 0\n"
    )
}

#[test]
fn decode_reads_the_kubelet_families() {
    let b = decode(&scrape(T0, 100.0, 2.5, 1_699_999_000.0), 0);
    assert_eq!(
        b.node,
        Some(Point {
            start_ms: 0,
            timestamp_ms: T0,
            cpu_ns: 100_000_000_000,
            memory: 1 << 30,
        })
    );
    let web = &b.pods[&("default".to_string(), "web".to_string())];
    assert_eq!(web["app"].cpu_ns, 2_500_000_000);
    assert_eq!(web["app"].memory, 2_097_152);
    assert_eq!(web["app"].start_ms, 1_699_999_000_000);
    assert_eq!(web.len(), 2);
    // A container that reported no CPU is dropped, as metrics-server drops it.
    let zero = decode(
        "container_cpu_usage_seconds_total{container=\"a\",namespace=\"n\",pod=\"p\"} 0 5\n\
         container_memory_working_set_bytes{container=\"a\",namespace=\"n\",pod=\"p\"} 10 5\n",
        0,
    );
    assert!(zero.pods[&("n".to_string(), "p".to_string())].is_empty());
    // Escaped label values.
    let esc = decode(
        "container_cpu_usage_seconds_total{container=\"a\\\"b\",namespace=\"n\",pod=\"p\"} 1 5\n\
         container_memory_working_set_bytes{container=\"a\\\"b\",namespace=\"n\",pod=\"p\"} 10 5\n",
        0,
    );
    assert!(esc.pods[&("n".to_string(), "p".to_string())].contains_key("a\"b"));
}

fn batches(text: String) -> HashMap<String, Batch> {
    HashMap::from([("n1".to_string(), decode(&text, 0))])
}

#[test]
fn usage_needs_two_points_and_is_a_rate_over_the_window() {
    let src = MetricsSource::default();
    let start = (T0 - 3_600_000) as f64 / 1000.0;
    src.store(&batches(scrape(T0, 100.0, 2.5, start)));
    assert_eq!(src.node_metrics("n1"), None);
    assert_eq!(src.pod_metrics("default", "web"), None);
    // 15 s later: the node used 3 cores, app a quarter of one, side nothing.
    src.store(&batches(scrape(T0 + 15_000, 145.0, 6.25, start)));
    let n = src.node_metrics("n1").expect("node usage");
    assert_eq!(n.window_ms, 15_000);
    assert_eq!(n.timestamp_ms, T0 + 15_000);
    assert_eq!(n.usage.cpu_nanocores, 3_000_000_000);
    assert_eq!(usage_json(&n.usage), json!({"cpu": "3", "memory": "1Gi"}));
    let p = src.pod_metrics("default", "web").expect("pod usage");
    assert_eq!(p.window_ms, 15_000);
    assert_eq!(p.containers.len(), 2);
    assert_eq!(p.containers[0].0, "app");
    assert_eq!(p.containers[0].1.cpu_nanocores, 250_000_000);
    assert_eq!(
        usage_json(&p.containers[0].1),
        json!({"cpu": "250m", "memory": "2Mi"})
    );
    assert_eq!(
        usage_json(&Usage {
            cpu_nanocores: 1_234_567,
            memory: 1_052_672
        }),
        json!({"cpu": "1234567n", "memory": "1028Ki"})
    );
    // The same point again keeps the pair; a restart (newer start time) starts over.
    src.store(&batches(scrape(T0 + 15_000, 145.0, 6.25, start)));
    assert!(src.pod_metrics("default", "web").is_some());
    let restarted = (T0 + 20_000) as f64 / 1000.0;
    src.store(&batches(scrape(T0 + 60_000, 150.0, 0.1, restarted)));
    assert_eq!(src.pod_metrics("default", "web"), None);
    // A node that stops answering is forgotten.
    src.store(&HashMap::new());
    assert_eq!(src.node_metrics("n1"), None);
}

#[test]
fn a_fresh_container_counts_from_its_start() {
    let src = MetricsSource::default();
    // Started 12 s before its first point (under a 15 s resolution, over 10 s): one point
    // is enough, the rate is from the start.
    let start = (T0 - 12_000) as f64 / 1000.0;
    src.store(&batches(scrape(T0, 1.0, 1.2, start)));
    let p = src.pod_metrics("default", "web").expect("fresh pod usage");
    assert_eq!(p.window_ms, 12_000);
    assert_eq!(p.containers[0].1.cpu_nanocores, 100_000_000);
}

#[test]
fn go_durations() {
    assert_eq!(go_duration(15_000), "15s");
    assert_eq!(go_duration(15_012), "15.012s");
    assert_eq!(go_duration(1_500), "1.5s");
    assert_eq!(go_duration(60_500), "1m0.5s");
    assert_eq!(go_duration(500), "500ms");
    assert_eq!(go_duration(3_600_000), "1h0m0s");
}
