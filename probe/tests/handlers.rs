//! Handler tests against in-process servers that misbehave on purpose (testkit).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, ContainerPort, Probe};
use parking_lot::Mutex;
use probe::handler::{exec, grpc, http, tcp};
use probe::{
    EventSink, EventType, HandlerEnv, HandlerError, HandlerOutput, HandlerResult, HostExecRunner,
    HttpGetSpec, ProbeResult, ProbeSpec, ProbeType, Prober, Scheme,
};
use testkit::grpc::{GrpcHealthServer, GrpcWithoutHealth, HealthStatus};
use testkit::http::HttpServer;
use testkit::tcp::{Blackhole, CountingListener, refused_addr};

/// Probe timeout of the tests: generous, so a loaded CI machine does not turn successes into timeouts.
const T: Duration = Duration::from_secs(1);

fn env() -> HandlerEnv {
    HandlerEnv::new("kube-probe/1.35").expect("tls config")
}

fn get(port: u16, path: &str) -> HttpGetSpec {
    HttpGetSpec {
        scheme: Scheme::Http,
        host: String::new(),
        port: Ok(port),
        path: path.to_string(),
        headers: Vec::new(),
    }
}

async fn http_probe(spec: &HttpGetSpec) -> HandlerOutput {
    http::probe(&env(), spec, "127.0.0.1", T).await
}

fn ok(result: HandlerResult, output: &str) -> HandlerOutput {
    HandlerOutput::new(result, output)
}

// ---------------------------------------------------------------- httpGet

#[tokio::test]
async fn http_200_is_success_with_body() {
    let s = HttpServer::start().await.unwrap();
    assert_eq!(
        http_probe(&get(s.port(), "/")).await,
        ok(HandlerResult::Success, "ok")
    );
}

#[tokio::test]
async fn http_500_is_failure_without_body() {
    let s = HttpServer::start().await.unwrap();
    s.set_health_status(500);
    assert_eq!(
        http_probe(&get(s.port(), "/health")).await,
        ok(
            HandlerResult::Failure,
            "HTTP probe failed with statuscode: 500"
        )
    );
    s.set_health_status(204);
    assert_eq!(
        http_probe(&get(s.port(), "/health")).await.result,
        HandlerResult::Success
    );
}

#[tokio::test]
async fn http_404_and_199_are_failures_304_is_warning() {
    let s = HttpServer::start().await.unwrap();
    let out = http_probe(&get(s.port(), "/status/404")).await;
    assert_eq!(
        out,
        ok(
            HandlerResult::Failure,
            "HTTP probe failed with statuscode: 404"
        )
    );
    let out = http_probe(&get(s.port(), "/status/304")).await;
    assert_eq!(
        out,
        ok(
            HandlerResult::Warning,
            "Probe terminated redirects, Response body: "
        )
    );
}

#[tokio::test]
async fn http_302_to_another_host_is_a_warning_and_not_followed() {
    let s = HttpServer::start().await.unwrap();
    let path = "/redirect?to=http://0.0.0.0/fail";
    let out = http_probe(&get(s.port(), path)).await;
    assert_eq!(
        out,
        ok(
            HandlerResult::Warning,
            "Probe terminated redirects, Response body: <a href=\"http://0.0.0.0/fail\">Found</a>."
        )
    );
    assert_eq!(s.request_count(), 1);
}

#[tokio::test]
async fn http_302_without_location_is_a_warning() {
    let s = HttpServer::start().await.unwrap();
    let out = http_probe(&get(s.port(), "/no-location")).await;
    assert_eq!(out.result, HandlerResult::Warning);
}

#[tokio::test]
async fn http_same_host_redirect_to_another_port_is_followed() {
    let a = HttpServer::start().await.unwrap();
    let b = HttpServer::start().await.unwrap();
    let path = format!("/redirect?to=http://127.0.0.1:{}/status/200", b.port());
    let out = http_probe(&get(a.port(), &path)).await;
    assert_eq!(out, ok(HandlerResult::Success, "status 200"));
    assert_eq!(b.request_count(), 1);
}

#[tokio::test]
async fn http_redirect_loop_fails_after_ten_requests() {
    let s = HttpServer::start().await.unwrap();
    let out = http_probe(&get(s.port(), "/redirect-loop")).await;
    let want = format!(
        "Get \"http://127.0.0.1:{}/redirect-loop\": stopped after 10 redirects",
        s.port()
    );
    assert_eq!(out, ok(HandlerResult::Failure, &want));
    assert_eq!(s.request_count(), 10);
}

#[tokio::test]
async fn http_nine_redirects_succeed_ten_fail() {
    let s = HttpServer::start().await.unwrap();
    let out = http_probe(&get(s.port(), "/chain/9")).await;
    assert_eq!(out, ok(HandlerResult::Success, "end of chain"));
    let out = http_probe(&get(s.port(), "/chain/10")).await;
    assert_eq!(out.result, HandlerResult::Failure);
    assert!(
        out.output
            .ends_with("/chain/1\": stopped after 10 redirects"),
        "{}",
        out.output
    );
}

#[tokio::test]
async fn http_slow_headers_time_out() {
    let s = HttpServer::start().await.unwrap();
    let out = http_probe(&get(s.port(), "/slow-headers/5000")).await;
    let want = format!(
        "Get \"http://127.0.0.1:{}/slow-headers/5000\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
        s.port()
    );
    assert_eq!(out, ok(HandlerResult::Failure, &want));
}

#[tokio::test]
async fn http_slow_body_is_an_error() {
    let s = HttpServer::start().await.unwrap();
    let out = http_probe(&get(s.port(), "/slow-body/5000")).await;
    assert_eq!(
        out,
        HandlerOutput::error(
            HandlerResult::Failure,
            HandlerError::BodyRead(
                "context deadline exceeded (Client.Timeout or context cancellation while reading body)".into()
            )
        )
    );
}

#[tokio::test]
async fn http_body_over_10_kib_is_truncated() {
    let s = HttpServer::start().await.unwrap();
    let out = http_probe(&get(s.port(), "/big-body/20000")).await;
    assert_eq!(out.result, HandlerResult::Success);
    assert_eq!(out.output.len(), 10 * 1024);
    let out = http_probe(&get(s.port(), "/big-body/10240")).await;
    assert_eq!(out.output.len(), 10240);
    // A body that never ends does not hold the probe until its timeout.
    let started = tokio::time::Instant::now();
    let out = http::probe(
        &env(),
        &get(s.port(), "/endless-body"),
        "127.0.0.1",
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(out.result, HandlerResult::Success);
    assert_eq!(out.output.len(), 10240);
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test]
async fn https_with_a_self_signed_certificate_succeeds() {
    let s = HttpServer::start_tls().await.unwrap();
    let mut spec = get(s.port(), "/status/200");
    spec.scheme = Scheme::Https;
    assert_eq!(
        http_probe(&spec).await,
        ok(HandlerResult::Success, "status 200")
    );
    // By host name too (SNI), as `host: localhost` would.
    spec.host = "localhost".into();
    assert_eq!(http_probe(&spec).await.result, HandlerResult::Success);
}

#[tokio::test]
async fn http_refused_connection_is_a_failure_with_go_text() {
    let addr = refused_addr().await.unwrap();
    let out = http_probe(&get(addr.port(), "/healthz")).await;
    let want = format!(
        "Get \"http://127.0.0.1:{p}/healthz\": dial tcp 127.0.0.1:{p}: connect: connection refused",
        p = addr.port()
    );
    assert_eq!(out, ok(HandlerResult::Failure, &want));
}

#[tokio::test]
async fn http_connect_timeout_is_a_failure() {
    let b = Blackhole::start().await.unwrap();
    let out = http_probe(&get(b.addr().port(), "/")).await;
    let want = format!(
        "Get \"http://127.0.0.1:{}/\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
        b.addr().port()
    );
    assert_eq!(out, ok(HandlerResult::Failure, &want));
}

#[tokio::test]
async fn http_request_headers_are_the_kubelets() {
    let s = HttpServer::start().await.unwrap();
    let mut spec = get(s.port(), "/echo?x=1");
    spec.headers = vec![
        ("Host".into(), "vhost.example".into()),
        ("X-Custom".into(), "a".into()),
        ("x-custom".into(), "b".into()),
    ];
    assert_eq!(http_probe(&spec).await.result, HandlerResult::Success);
    let r = &s.requests()[0];
    assert_eq!(r.path_and_query, "/echo?x=1");
    assert_eq!(r.header_values("host"), ["vhost.example"]);
    assert_eq!(r.header_values("user-agent"), ["kube-probe/1.35"]);
    assert_eq!(r.header_values("accept"), ["*/*"]);
    assert_eq!(r.header_values("x-custom"), ["a", "b"]);
    assert_eq!(r.header_values("connection"), ["close"]);
    assert!(r.header_values("accept-encoding").is_empty());

    // Without a Host header the request host is the URL's host and port.
    let out = http_probe(&get(s.port(), "/echo")).await;
    assert_eq!(out.result, HandlerResult::Success);
    assert_eq!(
        s.requests()[1].header_values("host"),
        [format!("127.0.0.1:{}", s.port())]
    );
}

#[tokio::test]
async fn http_port_error_is_an_unknown_error() {
    let mut spec = get(1, "/");
    spec.port = Err(HandlerError::PortSyntax("metrics".into()));
    let out = http_probe(&spec).await;
    assert_eq!(
        out,
        HandlerOutput::error(
            HandlerResult::Unknown,
            HandlerError::PortSyntax("metrics".into())
        )
    );
}

// ---------------------------------------------------------------- tcpSocket

#[tokio::test]
async fn tcp_connects_and_sends_nothing() {
    let l = CountingListener::start().await.unwrap();
    let out = tcp::probe("127.0.0.1", l.addr().port(), T).await;
    assert_eq!(out, ok(HandlerResult::Success, ""));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(l.connections(), 1);
    assert_eq!(l.bytes_received(), 0);
}

#[tokio::test]
async fn tcp_refused_and_timeout_are_failures_with_go_text() {
    let addr = refused_addr().await.unwrap();
    let out = tcp::probe("127.0.0.1", addr.port(), T).await;
    let want = format!(
        "dial tcp 127.0.0.1:{}: connect: connection refused",
        addr.port()
    );
    assert_eq!(out, ok(HandlerResult::Failure, &want));

    let b = Blackhole::start().await.unwrap();
    let out = tcp::probe("127.0.0.1", b.addr().port(), T).await;
    let want = format!("dial tcp 127.0.0.1:{}: i/o timeout", b.addr().port());
    assert_eq!(out, ok(HandlerResult::Failure, &want));
}

// ---------------------------------------------------------------- exec

fn argv(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// Processes (other than this test process) whose environment holds `var=value`.
fn processes_with_env(var: &str, value: &str) -> Vec<u32> {
    let needle = format!("{var}={value}");
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

fn marked_runner(marker: &str) -> HostExecRunner {
    HostExecRunner::new().env("PROBE_TEST_MARKER", marker)
}

#[tokio::test]
async fn exec_exit_codes_and_combined_output() {
    let r = HostExecRunner::new();
    let out = exec::probe(&r, &argv(&["sh", "-c", "echo hello"]), T).await;
    assert_eq!(out, ok(HandlerResult::Success, "hello\n"));
    let out = exec::probe(
        &r,
        &argv(&["sh", "-c", "echo err >&2; echo out; exit 3"]),
        T,
    )
    .await;
    assert_eq!(out, ok(HandlerResult::Failure, "out\nerr\n"));
}

#[tokio::test]
async fn exec_is_not_a_shell() {
    let r = HostExecRunner::new();
    let out = exec::probe(&r, &argv(&["echo", "$HOME", "a;b"]), T).await;
    assert_eq!(out, ok(HandlerResult::Success, "$HOME a;b\n"));
}

#[tokio::test]
async fn exec_output_over_10_kib_is_capped() {
    let r = HostExecRunner::new();
    let cmd = argv(&[
        "sh",
        "-c",
        "head -c 30000 /dev/zero | tr '\\0' a; head -c 30000 /dev/zero | tr '\\0' b >&2",
    ]);
    let out = exec::probe(&r, &cmd, Duration::from_secs(5)).await;
    assert_eq!(out.result, HandlerResult::Success);
    assert_eq!(out.output.len(), 10 * 1024);
    assert!(out.output.bytes().all(|b| b == b'a'));
}

#[tokio::test]
async fn exec_timeout_is_a_failure_and_kills_everything_it_started() {
    let marker = format!("timeout-{}", std::process::id());
    let r = marked_runner(&marker);
    // A child in the group, and a grandchild that escaped into its own session.
    let cmd = argv(&["sh", "-c", "sleep 1000 & setsid sleep 1000 & sleep 1000"]);
    let out = exec::probe(&r, &cmd, Duration::from_millis(300)).await;
    assert_eq!(
        out,
        ok(
            HandlerResult::Failure,
            "command \"sh -c sleep 1000 & setsid sleep 1000 & sleep 1000\" timed out"
        )
    );
    wait_until_gone("PROBE_TEST_MARKER", &marker).await;
}

#[tokio::test]
async fn exec_background_child_is_not_left_behind() {
    let marker = format!("bg-{}", std::process::id());
    let r = marked_runner(&marker);
    let started = tokio::time::Instant::now();
    let out = exec::probe(
        &r,
        &argv(&["sh", "-c", "sleep 10 & exit 1"]),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(out, ok(HandlerResult::Failure, ""));
    assert!(started.elapsed() < Duration::from_secs(5));
    wait_until_gone("PROBE_TEST_MARKER", &marker).await;
}

#[tokio::test]
async fn exec_escaped_daemon_holding_the_pipe_is_killed() {
    let marker = format!("daemon-{}", std::process::id());
    let r = marked_runner(&marker);
    let out = exec::probe(
        &r,
        &argv(&["sh", "-c", "setsid sleep 1000 & echo up"]),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(out, ok(HandlerResult::Success, "up\n"));
    wait_until_gone("PROBE_TEST_MARKER", &marker).await;
}

/// Processes killed with SIGKILL disappear once reaped by init; give that a moment.
async fn wait_until_gone(var: &str, value: &str) {
    for _ in 0..100 {
        let left = processes_with_env(var, value);
        if left.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let left = processes_with_env(var, value);
    assert!(left.is_empty(), "probe processes still alive: {left:?}");
}

#[tokio::test]
async fn exec_missing_binary_is_an_error() {
    let r = HostExecRunner::new();
    let out = exec::probe(&r, &argv(&["no-such-binary-paddock"]), T).await;
    assert_eq!(
        out,
        HandlerOutput::error(
            HandlerResult::Unknown,
            HandlerError::Exec(
                "exec: \"no-such-binary-paddock\": executable file not found in $PATH".into()
            )
        )
    );
}

// ---------------------------------------------------------------- grpc

#[tokio::test]
async fn grpc_serving_and_not_serving() {
    let s = GrpcHealthServer::start().await.unwrap();
    let out = grpc::probe(&env(), "127.0.0.1", i32::from(s.port()), "", T).await;
    assert_eq!(out, ok(HandlerResult::Success, "service healthy"));
    s.set_status("api", HealthStatus::NotServing).await;
    let out = grpc::probe(&env(), "127.0.0.1", i32::from(s.port()), "api", T).await;
    assert_eq!(
        out,
        ok(
            HandlerResult::Failure,
            "service unhealthy (responded with \"NOT_SERVING\")"
        )
    );
    s.set_status("api", HealthStatus::Serving).await;
    let out = grpc::probe(&env(), "127.0.0.1", i32::from(s.port()), "api", T).await;
    assert_eq!(out.result, HandlerResult::Success);
}

#[tokio::test]
async fn grpc_unknown_service_is_a_failure() {
    let s = GrpcHealthServer::start().await.unwrap();
    let out = grpc::probe(&env(), "127.0.0.1", i32::from(s.port()), "nope", T).await;
    assert_eq!(
        out,
        ok(
            HandlerResult::Failure,
            "error: health rpc probe failed: rpc error: code = NotFound desc = service not registered"
        )
    );
}

#[tokio::test]
async fn grpc_without_health_service_is_not_implemented() {
    let s = GrpcWithoutHealth::start().await.unwrap();
    let out = grpc::probe(&env(), "127.0.0.1", i32::from(s.port()), "", T).await;
    assert_eq!(
        out,
        ok(
            HandlerResult::Failure,
            "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): unknown service grpc.health.v1.Health"
        )
    );
}

#[tokio::test]
async fn grpc_wrong_port_times_out_connecting() {
    let addr = refused_addr().await.unwrap();
    let out = grpc::probe(
        &env(),
        "127.0.0.1",
        i32::from(addr.port()),
        "",
        Duration::from_millis(300),
    )
    .await;
    let want = format!(
        "timeout: failed to connect service \"127.0.0.1:{}\" within 300ms: context deadline exceeded",
        addr.port()
    );
    assert_eq!(out, ok(HandlerResult::Failure, &want));
    // A port with an HTTP/1 server is just as wrong.
    let h = HttpServer::start().await.unwrap();
    let out = grpc::probe(
        &env(),
        "127.0.0.1",
        i32::from(h.port()),
        "",
        Duration::from_millis(300),
    )
    .await;
    assert!(
        out.output.starts_with("timeout: failed to connect service"),
        "{}",
        out.output
    );
}

// ---------------------------------------------------------------- prober: retries and events

#[derive(Default)]
struct Recorder(Mutex<Vec<(EventType, String, String)>>);

impl EventSink for Recorder {
    fn event(&self, kind: EventType, reason: &str, message: String) {
        self.0.lock().push((kind, reason.to_string(), message));
    }
}

fn prober_for(ty: ProbeType, probe: Probe, events: Arc<Recorder>) -> Prober {
    let container = Container {
        name: "app".into(),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: 1,
            ..Default::default()
        }]),
        ..Default::default()
    };
    let spec = ProbeSpec::new(ty, &probe, &container, "web_default(uid)");
    Prober::new(
        Arc::new(spec),
        env(),
        Arc::new(HostExecRunner::new()),
        events,
    )
}

fn http_probe_spec(port: &str, path: &str) -> Probe {
    serde_json::from_value(serde_json::json!({
        "httpGet": {"port": port.parse::<i32>().map(serde_json::Value::from).unwrap_or(port.into()), "path": path},
        "timeoutSeconds": 1,
    }))
    .unwrap()
}

#[tokio::test]
async fn prober_failure_records_unhealthy() {
    let s = HttpServer::start().await.unwrap();
    s.set_health_status(500);
    let events = Arc::new(Recorder::default());
    let p = prober_for(
        ProbeType::Liveness,
        http_probe_spec(&s.port().to_string(), "/health"),
        events.clone(),
    );
    let run = p.probe("127.0.0.1").await;
    assert_eq!(run.outcome, Ok(ProbeResult::Failure));
    assert_eq!(run.tries, 1);
    assert_eq!(
        events.0.lock().as_slice(),
        [(
            EventType::Warning,
            "Unhealthy".to_string(),
            "Liveness probe failed: HTTP probe failed with statuscode: 500".to_string()
        )]
    );
}

#[tokio::test]
async fn prober_warning_is_success_with_probe_warning() {
    let s = HttpServer::start().await.unwrap();
    let events = Arc::new(Recorder::default());
    let p = prober_for(
        ProbeType::Readiness,
        http_probe_spec(&s.port().to_string(), "/redirect?to=http://0.0.0.0/"),
        events.clone(),
    );
    let run = p.probe("127.0.0.1").await;
    assert_eq!(run.outcome, Ok(ProbeResult::Success));
    assert_eq!(
        events.0.lock().as_slice(),
        [(
            EventType::Warning,
            "ProbeWarning".to_string(),
            "Readiness probe warning: Probe terminated redirects, Response body: <a href=\"http://0.0.0.0/\">Found</a>."
                .to_string()
        )]
    );
}

#[tokio::test]
async fn prober_error_is_retried_three_times_then_discarded() {
    let events = Arc::new(Recorder::default());
    let p = prober_for(
        ProbeType::Startup,
        http_probe_spec("metrics", "/"),
        events.clone(),
    );
    let run = p.probe("127.0.0.1").await;
    assert_eq!(run.tries, 3);
    assert_eq!(run.outcome, Err(HandlerError::PortSyntax("metrics".into())));
    assert_eq!(
        events.0.lock().as_slice(),
        [(
            EventType::Warning,
            "Unhealthy".to_string(),
            "Startup probe errored and resulted in unknown state: strconv.Atoi: parsing \"metrics\": invalid syntax"
                .to_string()
        )]
    );
}

#[tokio::test]
async fn prober_slow_body_errors_three_times() {
    let s = HttpServer::start().await.unwrap();
    let events = Arc::new(Recorder::default());
    let p = prober_for(
        ProbeType::Readiness,
        http_probe_spec(&s.port().to_string(), "/slow-body/3000"),
        events.clone(),
    );
    let run = p.probe("127.0.0.1").await;
    assert_eq!(run.tries, 3);
    assert!(run.outcome.is_err());
    assert_eq!(
        events.0.lock()[0].2,
        "Readiness probe errored and resulted in failure state: context deadline exceeded (Client.Timeout or context cancellation while reading body)"
    );
    assert_eq!(s.request_count(), 3);
}

#[tokio::test]
async fn https_speaks_http2_when_the_server_offers_it_by_alpn() {
    let s = HttpServer::start_tls_h2().await.unwrap();
    let mut spec = get(s.port(), "/echo?q=1");
    spec.scheme = Scheme::Https;
    spec.headers = vec![("Host".into(), "vhost.example".into())];
    let out = http_probe(&spec).await;
    assert_eq!(out.result, HandlerResult::Success, "{}", out.output);
    let r = &s.requests()[0];
    assert_eq!(r.version, "HTTP/2.0");
    assert_eq!(r.path_and_query, "/echo?q=1");
    assert_eq!(r.header_values("user-agent"), ["kube-probe/1.35"]);
    // A redirect loop over HTTP/2 fails the same way.
    let out = http_probe(&HttpGetSpec {
        path: "/redirect-loop".into(),
        ..spec.clone()
    })
    .await;
    assert!(
        out.output.ends_with("stopped after 10 redirects"),
        "{}",
        out.output
    );
    // Without h2 on offer the probe stays on HTTP/1.1.
    let s1 = HttpServer::start_tls().await.unwrap();
    let mut spec1 = get(s1.port(), "/");
    spec1.scheme = Scheme::Https;
    assert_eq!(http_probe(&spec1).await.result, HandlerResult::Success);
    assert_eq!(s1.requests()[0].version, "HTTP/1.1");
}
