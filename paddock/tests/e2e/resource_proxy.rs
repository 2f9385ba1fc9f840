//! `services/{name}/proxy` and `pods/{name}/proxy` through the API server, as `kubectl get
//! --raw` and `kubectl proxy` users browse them: the request reaches a ready pod with its path
//! and query, never with the caller's token; upstream's 503s when nothing can answer.

use crate::support::{Server, Streaming, manifest, run};

/// A pod that answers every request with the request line and headers it received.
const ECHO: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: echo
  labels: {app: echo}
spec:
  runtimeClassName: paddock-host
  containers:
  - name: echo
    image: python:3.11
    command:
    - python3
    - -c
    - |
      import http.server
      class H(http.server.BaseHTTPRequestHandler):
          def answer(self):
              n = int(self.headers.get("Content-Length") or 0)
              body = (self.requestline + "\n" + str(self.headers) + self.rfile.read(n).decode()).encode()
              self.send_response(200)
              self.send_header("Content-Length", str(len(body)))
              self.send_header("X-Echo", "yes")
              self.end_headers()
              self.wfile.write(body)
          do_GET = do_POST = do_PUT = do_DELETE = answer
      http.server.HTTPServer(("", 8080), H).serve_forever()
    ports:
    - {name: http, containerPort: 8080}
    readinessProbe:
      tcpSocket: {port: http}
      periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  selector: {app: echo}
  ports:
  - {name: web, port: 80, targetPort: http}
---
apiVersion: v1
kind: Service
metadata: {name: empty}
spec:
  selector: {app: nothing}
  ports:
  - {port: 80}
"#;

#[test]
fn services_and_pods_are_reachable_through_the_api_server_and_kubectl_proxy() {
    let (_dir, path) = manifest("echo.yaml", ECHO);
    let s = Server::up(&[&path]);
    s.eventually("echo in the ready endpoints", || {
        let ips = s.kubectl(&[
            "get",
            "endpoints",
            "echo",
            "-o",
            "jsonpath={.subsets[*].addresses[*].ip}",
        ]);
        (!ips.trim().is_empty()).then_some(())
    });
    // By port number, by port name, with a scheme; path and query go on as written.
    for id in ["echo:80", "echo:web", "http:echo:80"] {
        let out = s.kubectl(&[
            "get",
            "--raw",
            &format!("/api/v1/namespaces/default/services/{id}/proxy/some/path?x=1&y=%2F"),
        ]);
        assert!(
            out.starts_with("GET /some/path?x=1&y=%2F HTTP/1.1"),
            "{id}: {out}"
        );
        // kubectl sent a bearer token to the API server; the app never sees it.
        assert!(!out.to_ascii_lowercase().contains("authorization"), "{out}");
    }
    let pod = s.kubectl(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/pods/echo/proxy/p",
    ]);
    assert!(pod.starts_with("GET /p HTTP/1.1"), "{pod}");
    // Upstream's errors when nothing can answer.
    let (_, err) = s.kubectl_err(
        &[
            "get",
            "--raw",
            "/api/v1/namespaces/default/services/empty:80/proxy/",
        ],
        None,
    );
    assert!(err.contains("no endpoints available for service"), "{err}");
    let (_, err) = s.kubectl_err(
        &[
            "get",
            "--raw",
            "/api/v1/namespaces/default/services/echo:81/proxy/",
        ],
        None,
    );
    assert!(
        err.contains("no service port 81 found for service \"echo\""),
        "{err}"
    );
    let (_, err) = s.kubectl_err(
        &[
            "get",
            "--raw",
            "/api/v1/namespaces/default/services/nope:80/proxy/",
        ],
        None,
    );
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );

    // kubectl proxy: a browser's way in, with a POST body and the bare /proxy redirected.
    let mut proxy = Streaming::spawn(s.kubectl_cmd(&["proxy", "--port=0"]));
    let line = proxy.wait_for("the serving line", |l| l.contains("Starting to serve on"));
    let port = line.rsplit(':').next().unwrap().trim().to_string();
    let base = format!("http://127.0.0.1:{port}/api/v1/namespaces/default/services/echo:web/proxy");
    let mut curl = s.command("curl");
    curl.args([
        "-s",
        "-m",
        "10",
        "-i",
        "-d",
        "hello=1",
        &format!("{base}/form"),
    ]);
    let out = String::from_utf8_lossy(&run(curl, None).stdout).into_owned();
    assert!(out.contains("X-Echo: yes"), "{out}");
    assert!(out.contains("POST /form HTTP/1.1"), "{out}");
    assert!(out.trim_end().ends_with("hello=1"), "{out}");
    let mut curl = s.command("curl");
    curl.args([
        "-s",
        "-m",
        "10",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{redirect_url}",
        &base,
    ]);
    let out = String::from_utf8_lossy(&run(curl, None).stdout).into_owned();
    assert!(out.starts_with("301 ") && out.ends_with("/proxy/"), "{out}");
}
