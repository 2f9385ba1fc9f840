//! The built-in Ingress controller end to end: `paddock up` in a network namespace of its
//! own with two Deployments behind Services and an Ingress (class `paddock`) with two hosts,
//! one of them TLS with a Secret made by `kubectl create secret tls`; curl with `--resolve`
//! to the node's listeners (127.0.0.1:80 and :443, the defaults): requests routed by host and
//! path, the forwarded headers, TLS chosen by SNI (HTTP/2 by ALPN), 404 for an unknown host,
//! 503 and a Warning event for a missing Service, the load balancer status, an Ingress made
//! by `kubectl create ingress` without a class (the default class), its status cleared
//! when its class becomes another controller's, and a pod that stops being ready leaving
//! the rotation.

use std::process::Command;

use crate::support::{Server, manifest, run};

/// A web server that answers `<app> <pod> <path> host=… xff=… proto=…`, with a readiness
/// endpoint `/healthz` that `/unready` turns to 503.
const SERVER: &str = r#"
import http.server, os
ready = [True]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def do_GET(self):
        code = 200
        if self.path == '/healthz':
            code = 200 if ready[0] else 503
            body = b'ok'
        elif self.path == '/unready':
            ready[0] = False
            body = b'unready'
        else:
            h = self.headers
            body = ('%s %s %s host=%s xff=%s proto=%s\n' % (os.environ['APP'], os.environ['POD'],
                self.path, h.get('Host'), h.get('X-Forwarded-For'), h.get('X-Forwarded-Proto'))).encode()
        self.send_response(code)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(('', 8080), H).serve_forever()
"#;

fn deployment(app: &str, replicas: u32) -> String {
    let script = serde_json::to_string(SERVER).expect("json");
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: {app}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {app}}}}}
  template:
    metadata: {{labels: {{app: {app}}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: python
        command: [python3, -c, {script}]
        env:
        - {{name: APP, value: {app}}}
        - {{name: POD, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
        ports: [{{name: http, containerPort: 8080}}]
        readinessProbe: {{httpGet: {{path: /healthz, port: http}}, periodSeconds: 1, failureThreshold: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: {app}}}
spec:
  selector: {{app: {app}}}
  ports: [{{name: http, port: 80, targetPort: http}}]
---
"
    )
}

const INGRESS: &str = "apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec:
  ingressClassName: paddock
  tls: [{hosts: [secure.example], secretName: secure-tls}]
  rules:
  - host: plain.example
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: alpha, port: {name: http}}}}
      - {path: /beta, pathType: Prefix, backend: {service: {name: beta, port: {number: 80}}}}
      - {path: /missing, pathType: Exact, backend: {service: {name: nothere, port: {number: 80}}}}
  - host: secure.example
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: beta, port: {number: 80}}}}
";

/// curl in the node's namespace: (HTTP code, body, stderr).
fn curl(s: &Server, args: &[&str]) -> (String, String, String) {
    let mut c: Command = s.command("curl");
    c.args(["-sS", "-m", "5", "-w", "\n%{http_code} %{http_version}"])
        .args(args);
    let out = run(c, None);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (
        code.to_string(),
        body.trim_end().to_string(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn get(s: &Server, host: &str, path: &str) -> (String, String) {
    let (code, body, _) = curl(
        s,
        &[
            "--resolve",
            &format!("{host}:80:127.0.0.1"),
            &format!("http://{host}{path}"),
        ],
    );
    (code, body)
}

#[test]
fn ingress_routes_by_host_and_path_with_tls_by_sni_and_follows_readiness() {
    let app = format!(
        "{}{}{INGRESS}",
        deployment("alpha", 2),
        deployment("beta", 1)
    );
    let (_m, path) = manifest("app.yaml", &app);
    let s = Server::up(&[&path]);
    for d in ["alpha", "beta"] {
        s.kubectl(&[
            "wait",
            "--for=condition=Available",
            &format!("deployment/{d}"),
            "--timeout=90s",
        ]);
    }

    // Routed by host and path; the forwarded headers are the listener's view.
    let body = s.eventually("alpha through the ingress", || {
        let (code, body) = get(&s, "plain.example", "/some/page?q=1");
        (code == "200 1.1" && body.starts_with("alpha ")).then_some(body)
    });
    assert!(
        body.ends_with("/some/page?q=1 host=plain.example xff=127.0.0.1 proto=http"),
        "{body}"
    );
    let (code, body) = get(&s, "plain.example", "/beta/x");
    assert!(
        code == "200 1.1" && body.starts_with("beta "),
        "{code} {body}"
    );
    // Element-wise prefix: /betax is not under /beta.
    let (code, body) = get(&s, "PLAIN.example", "/betax");
    assert!(
        code == "200 1.1" && body.starts_with("alpha "),
        "{code} {body}"
    );
    // A host no rule names: no default backend, 404.
    let (code, _) = get(&s, "nobody.example", "/");
    assert_eq!(code, "404 1.1");
    // The TLS host is served over plain HTTP too (no redirect).
    let (code, body) = get(&s, "secure.example", "/");
    assert!(
        code == "200 1.1" && body.starts_with("beta "),
        "{code} {body}"
    );

    // A missing Service: 503, and a Warning event on the Ingress.
    let (code, _) = get(&s, "plain.example", "/missing");
    assert_eq!(code, "503 1.1");
    let events = s.eventually("the ServiceNotFound event", || {
        let out = s.kubectl(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.kind=Ingress,involvedObject.name=web,reason=ServiceNotFound",
            "-o",
            "jsonpath={.items[*].type} {.items[*].message}",
        ]);
        out.contains("Warning").then_some(out)
    });
    assert!(
        events.contains("Service \"default/nothere\" not found"),
        "{events}"
    );

    // The load balancer status: 127.0.0.1 and the Ready Nodes' addresses.
    let node_ip = s.kubectl(&[
        "get",
        "nodes",
        "-o",
        "jsonpath={.items[0].status.addresses[?(@.type==\"InternalIP\")].address}",
    ]);
    let want = if node_ip == "127.0.0.1" {
        node_ip.clone()
    } else {
        format!("127.0.0.1 {node_ip}")
    };
    s.eventually("the ingress status", || {
        let ips = s.kubectl(&[
            "get",
            "ingress",
            "web",
            "-o",
            "jsonpath={.status.loadBalancer.ingress[*].ip}",
        ]);
        (ips == want).then_some(())
    });

    let table = s.kubectl(&["get", "ingress", "web"]);
    assert!(table.contains("127.0.0.1"), "ADDRESS column:\n{table}");

    // An Ingress made by `kubectl create ingress`, without a class: the default class is
    // ours.
    s.kubectl(&[
        "create",
        "ingress",
        "made",
        "--rule=made.example/b*=beta:80",
    ]);
    let (code, body) = s.eventually("the classless Ingress routed", || {
        let (code, body) = get(&s, "made.example", "/b/1");
        (code == "200 1.1").then_some((code, body))
    });
    assert!(body.starts_with("beta "), "{code} {body}");
    assert_eq!(get(&s, "made.example", "/a").0, "404 1.1");

    // Once its class is another controller's, it is no longer routed here, and the status
    // this controller wrote is cleared.
    let made_status = || {
        s.kubectl(&[
            "get",
            "ingress",
            "made",
            "-o",
            "jsonpath={.status.loadBalancer.ingress[*].ip}",
        ])
    };
    s.eventually("the classless Ingress's status", || {
        (made_status() == want).then_some(())
    });
    s.kubectl(&[
        "patch",
        "ingress",
        "made",
        "--type=merge",
        "-p",
        r#"{"spec":{"ingressClassName":"someone-else"}}"#,
    ]);
    s.eventually("the status cleared once the class changed", || {
        made_status().is_empty().then_some(())
    });
    assert_eq!(get(&s, "made.example", "/b/1").0, "404 1.1");

    // TLS: the Secret's certificate by SNI once it exists, HTTP/2 by ALPN.
    let certs = tempfile::tempdir().expect("tempdir");
    let ck = rcgen::generate_simple_self_signed(vec!["secure.example".to_string()])
        .expect("certificate");
    let crt = certs.path().join("tls.crt");
    let key = certs.path().join("tls.key");
    std::fs::write(&crt, ck.cert.pem()).expect("write cert");
    std::fs::write(&key, ck.signing_key.serialize_pem()).expect("write key");
    s.kubectl(&[
        "create",
        "secret",
        "tls",
        "secure-tls",
        "--cert",
        crt.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    let https = |host: &str, extra: &[&str]| {
        let resolve = format!("{host}:443:127.0.0.1");
        let url = format!("https://{host}/tls");
        let mut args = vec!["--cacert", crt.to_str().unwrap(), "--resolve", &resolve];
        args.extend_from_slice(extra);
        args.push(&url);
        curl(&s, &args)
    };
    let (code, body) = s.eventually("TLS with the Secret's certificate", || {
        let (code, body, _) = https("secure.example", &[]);
        code.starts_with("200").then_some((code, body))
    });
    assert_eq!(code, "200 2", "HTTP/2 by ALPN");
    assert!(
        body.starts_with("beta ")
            && body.ends_with("/tls host=secure.example xff=127.0.0.1 proto=https"),
        "{body}"
    );
    let (code, body, _) = https("secure.example", &["--http1.1"]);
    assert!(
        code == "200 1.1" && body.starts_with("beta "),
        "{code} {body}"
    );
    // Another name gets the default (self-signed) certificate, which curl does not trust
    // with the Secret's as CA; routing still works when told not to verify.
    let (code, _, err) = https("plain.example", &[]);
    assert!(code.starts_with("000"), "{code} {err}");
    let (code, body, _) = https("plain.example", &["-k"]);
    assert!(
        code == "200 2" && body.starts_with("alpha "),
        "{code} {body}"
    );

    // A pod that stops being ready leaves the rotation.
    let pods = s.kubectl(&[
        "get",
        "pods",
        "-l",
        "app=alpha",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name} {.status.podIP}{\"\\n\"}{end}",
    ]);
    let pods: Vec<(&str, &str)> = pods.lines().filter_map(|l| l.split_once(' ')).collect();
    assert_eq!(pods.len(), 2, "{pods:?}");
    let seen = |n: usize| -> Vec<String> {
        (0..n)
            .map(|_| get(&s, "plain.example", "/who").1)
            .filter_map(|b| b.split(' ').nth(1).map(str::to_string))
            .collect()
    };
    let both = seen(6);
    assert!(
        pods.iter().all(|(name, _)| both.iter().any(|b| b == name)),
        "round-robin over both pods: {both:?}"
    );
    let (gone, gone_ip) = pods[0];
    let (kept, _) = pods[1];
    let mut c = s.command("curl");
    c.args(["-sS", "-m", "5", &format!("http://{gone_ip}:8080/unready")]);
    assert!(run(c, None).status.success());
    s.kubectl(&[
        "wait",
        "--for=condition=Ready=false",
        &format!("pod/{gone}"),
        "--timeout=30s",
    ]);
    let after = seen(6);
    assert!(
        after.iter().all(|b| b == kept),
        "only {kept} after {gone} turned not ready: {after:?}"
    );
    assert_eq!(after.len(), 6, "{after:?}");
}
