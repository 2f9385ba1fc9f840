//! Test support: start a real `paddock server` process on 127.0.0.1:0 with its own data dir,
//! and drive it with real kubectl (fresh HOME per server, so kubectl's discovery cache never
//! leaks between tests), curl and the Python client. Everything is killed and removed on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// How long any single external command may take before the test fails (never hangs).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// A network namespace made for one test (a "test host"); deleted on drop, also when the
/// test fails, together with anything still running in it.
pub struct NetNs {
    /// Its name (`paddock-e2e-<pid>-<n>`).
    pub name: String,
}

impl NetNs {
    /// Creates the namespace with its loopback up.
    pub fn new() -> NetNs {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let name = format!(
            "paddock-e2e-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let ok = |args: &[&str]| {
            let out = run(
                {
                    let mut c = Command::new("ip");
                    c.args(args);
                    c
                },
                None,
            );
            assert!(
                out.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        ok(&["netns", "add", &name]);
        let ns = NetNs { name };
        ok(&["netns", "exec", &ns.name, "ip", "link", "set", "lo", "up"]);
        ns
    }

    /// `cmd` wrapped to run inside the namespace.
    pub fn wrap(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Anything left inside (a crashed test's processes) goes with the namespace.
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                if let Ok(pid) = pid.parse::<i32>() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A running `paddock server` (or `paddock up`) child process.
pub struct Server {
    child: Option<Child>,
    netns: Option<NetNs>,
    dir: tempfile::TempDir,
    home: tempfile::TempDir,
    /// Path of the kubeconfig the server wrote.
    pub kubeconfig: PathBuf,
    /// `https://127.0.0.1:PORT`
    pub url: String,
    /// The admin bearer token from the kubeconfig.
    pub token: String,
}

impl Server {
    /// Starts a server on a fresh data dir.
    pub fn start() -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_in(dir)
    }

    /// Starts a server on the given data dir (kept, so a restart can reuse it).
    pub fn start_in(dir: tempfile::TempDir) -> Server {
        Self::launch(dir, &["server"])
    }

    /// Runs `paddock up -f FILE…` on a fresh data dir, inside a network namespace of its own
    /// (a test host: pod networks, bridges and addresses exist only there). kubectl and curl
    /// then run inside it too.
    pub fn up(files: &[&std::path::Path]) -> Server {
        let mut args = vec!["up".to_string()];
        args.extend(
            host_runtime_unless_chosen(&[])
                .iter()
                .map(|a| a.to_string()),
        );
        for f in files {
            args.push("-f".into());
            args.push(f.display().to_string());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Self::launch_in(
            tempfile::tempdir().expect("tempdir"),
            &args,
            Some(NetNs::new()),
        )
    }

    /// Starts `paddock <args> --listen 127.0.0.1:0 --data-dir DIR/data` (no `--listen` when
    /// `args` has one) and waits for its kubeconfig line.
    pub fn launch(dir: tempfile::TempDir, args: &[&str]) -> Server {
        Self::launch_in(dir, args, None)
    }

    /// [`Server::launch`], optionally inside a network namespace.
    pub fn launch_in(dir: tempfile::TempDir, args: &[&str], netns: Option<NetNs>) -> Server {
        Self::launch_wrapped(dir, &[], args, netns)
    }

    /// [`Server::launch_in`] with the binary run through `wrapper` (`prlimit --nofile=…`).
    pub fn launch_wrapped(
        dir: tempfile::TempDir,
        wrapper: &[&str],
        args: &[&str],
        netns: Option<NetNs>,
    ) -> Server {
        let home = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("server.log"))
            .expect("log file");
        let bin = env!("CARGO_BIN_EXE_paddock");
        let (program, wrapped): (&str, &[&str]) = match wrapper.split_first() {
            Some((first, rest)) => (first, rest),
            None => (bin, &[]),
        };
        let mut child = match &netns {
            Some(ns) => ns.wrap(program),
            None => Command::new(program),
        }
        .args(wrapped)
        .args(if wrapper.is_empty() { None } else { Some(bin) })
        .args(args)
        .args(if args.contains(&"--listen") {
            &[][..]
        } else {
            &["--listen", "127.0.0.1:0"][..]
        })
        .arg("--data-dir")
        .arg(&data)
        .env("PADDOCK_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn paddock server");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        // Every stdout line is kept in `stdout.log` ([`Server::stdout`]).
        let mut kept = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("stdout.log"))
            .expect("stdout log");
        thread::spawn(move || {
            use std::io::Write as _;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(kept, "{line}");
                if let Some(path) = line.strip_prefix("export KUBECONFIG=") {
                    let _ = tx.send(PathBuf::from(path));
                }
            }
        });
        let kubeconfig = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(path) => path,
            Err(_) => {
                let _ = child.kill();
                let log =
                    std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
                panic!("paddock server did not print its kubeconfig within 60 s; log:\n{log}");
            }
        };
        let text = std::fs::read_to_string(&kubeconfig).expect("read kubeconfig");
        let url = yaml_field(&text, "server:").expect("server url in kubeconfig");
        let token = yaml_field(&text, "token:").expect("token in kubeconfig");
        Server {
            child: Some(child),
            netns,
            dir,
            home,
            kubeconfig,
            url,
            token,
        }
    }

    /// What the server printed on stdout so far (this run and earlier ones on the same dir).
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stdout.log")).unwrap_or_default()
    }

    /// The server's data dir (`--data-dir`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The address the server listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.url
            .trim_start_matches("https://")
            .parse()
            .expect("host:port in the server URL")
    }

    /// The server's log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Stops the server with SIGTERM and waits for it; returns the data dir for a restart.
    pub fn stop(mut self) -> tempfile::TempDir {
        if let Some(mut child) = self.child.take() {
            signal(&child, nix::sys::signal::Signal::SIGTERM);
            wait_or_kill(&mut child, Duration::from_secs(30));
        }
        self.take_dir()
    }

    /// Kills the server with SIGKILL (no chance to flush); returns the data dir.
    pub fn kill9(mut self) -> tempfile::TempDir {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.take_dir()
    }

    /// [`Server::kill9`], keeping the network namespace (a restart runs in the same "host").
    pub fn kill9_keep_netns(mut self) -> (tempfile::TempDir, NetNs) {
        let netns = self.netns.take().expect("a server in a namespace");
        (self.kill9(), netns)
    }

    /// [`Server::stop`], keeping the network namespace and the data dir (a restart runs on
    /// the same "host" and data).
    pub fn stop_keep_netns_and_dir(mut self) -> (tempfile::TempDir, NetNs) {
        let netns = self.netns.take().expect("a server in a namespace");
        (self.stop(), netns)
    }

    /// [`Server::stop`], keeping the network namespace to look at what the node left.
    pub fn stop_keep_netns(mut self) -> NetNs {
        let netns = self.netns.take().expect("a server in a namespace");
        drop(self.stop());
        netns
    }

    /// The network namespace it runs in (`paddock up` always has one).
    pub fn netns_name(&self) -> String {
        self.netns
            .as_ref()
            .map(|ns| ns.name.clone())
            .expect("a server in a network namespace")
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    fn take_dir(&mut self) -> tempfile::TempDir {
        std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"))
    }

    /// `program`, inside the server's network namespace if it has one.
    pub fn command(&self, program: &str) -> Command {
        match &self.netns {
            Some(ns) => ns.wrap(program),
            None => Command::new(program),
        }
    }

    /// A kubectl command set up for this server (own HOME, own kubeconfig).
    pub fn kubectl_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = self.command("kubectl");
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("KUBECONFIG", &self.kubeconfig);
        cmd
    }

    /// Runs kubectl, with optional stdin, bounded by [`COMMAND_TIMEOUT`].
    pub fn kubectl_full(&self, args: &[&str], stdin: Option<&str>) -> Output {
        run(self.kubectl_cmd(args), stdin)
    }

    /// Runs kubectl and returns stdout; panics with stderr and the server log if it fails.
    pub fn kubectl(&self, args: &[&str]) -> String {
        self.kubectl_in(args, None)
    }

    /// Like [`Server::kubectl`] with stdin.
    pub fn kubectl_in(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.kubectl_full(args, stdin);
        if !out.status.success() {
            panic!(
                "kubectl {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}\nserver log (tail):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                tail(&self.log(), 40)
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl expecting failure; returns (exit code, stderr).
    pub fn kubectl_err(&self, args: &[&str], stdin: Option<&str>) -> (i32, String) {
        let out = self.kubectl_full(args, stdin);
        assert!(
            !out.status.success(),
            "kubectl {args:?} unexpectedly succeeded:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Polls `check` (every 100 ms, up to [`COMMAND_TIMEOUT`]) until it returns Some.
    pub fn eventually<T>(&self, what: &str, check: impl FnMut() -> Option<T>) -> T {
        self.eventually_explained(what, check, String::new)
    }

    /// [`Server::eventually`], adding what `explain` says (the state that was waited on) to
    /// the failure.
    pub fn eventually_explained<T>(
        &self,
        what: &str,
        mut check: impl FnMut() -> Option<T>,
        explain: impl FnOnce() -> String,
    ) -> T {
        let start = std::time::SystemTime::now();
        loop {
            if let Some(v) = check() {
                return v;
            }
            if start.elapsed().unwrap_or_default() > COMMAND_TIMEOUT {
                panic!(
                    "{what}: not reached within {COMMAND_TIMEOUT:?}{}; server log:\n{}",
                    explain(),
                    tail(&self.log(), 40)
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// `kubectl get … -o json` parsed.
    pub fn get_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.kubectl(&all)).expect("kubectl json output")
    }

    /// A raw HTTPS request with curl over HTTP/1.1: returns (status code, body). `token`
    /// None sends no Authorization header; Some(t) sends `Bearer t`.
    pub fn curl(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Option<&[u8]>,
    ) -> (u16, String) {
        self.curl_with(&["--http1.1"], method, path, token, content_type, body)
    }

    /// The CA certificate (PEM) from the kubeconfig, in a file of the server's dir.
    pub fn ca_file(&self) -> PathBuf {
        let ca = self.dir.path().join("ca-for-curl.crt");
        if !ca.exists() {
            let text = std::fs::read_to_string(&self.kubeconfig).expect("kubeconfig");
            let data = yaml_field(&text, "certificate-authority-data:").expect("ca data");
            std::fs::write(&ca, base64_decode(&data)).expect("write ca");
        }
        ca
    }

    /// [`Server::curl`] with extra curl flags (`--http2`, `--max-time 5`…); status 0 when curl
    /// got no HTTP answer (a reset stream, a dropped connection).
    pub fn curl_with(
        &self,
        flags: &[&str],
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Option<&[u8]>,
    ) -> (u16, String) {
        let ca = self.ca_file();
        let mut cmd = self.command("curl");
        cmd.args(["-sS"])
            .args(flags)
            .args(["-o", "-", "-w", "\n%{http_code}", "-X", method, "--cacert"])
            .arg(&ca)
            .arg(format!("{}{}", self.url, path));
        if let Some(t) = token {
            cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
        }
        if let Some(ct) = content_type {
            cmd.args(["-H", &format!("Content-Type: {ct}")]);
        }
        let body_file;
        if let Some(b) = body {
            body_file = tempfile::NamedTempFile::new().expect("tmp");
            std::fs::write(body_file.path(), b).expect("write body");
            cmd.arg("--data-binary")
                .arg(format!("@{}", body_file.path().display()));
        }
        let out = run(cmd, None);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM first: `paddock up` then stops its pods and tears their namespaces down.
        if let Some(mut child) = self.child.take() {
            signal(&child, nix::sys::signal::Signal::SIGTERM);
            wait_or_kill(&mut child, Duration::from_secs(40));
        }
    }
}

/// Runs a command with optional stdin and a hard timeout; output captured.
pub fn run(mut cmd: Command, stdin: Option<&str>) -> Output {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        let input = input.to_string();
        thread::spawn(move || {
            let _ = pipe.write_all(input.as_bytes());
        });
    }
    let mut out_pipe = child.stdout.take().expect("stdout");
    let mut err_pipe = child.stderr.take().expect("stderr");
    let out_t = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out_pipe.read_to_end(&mut v);
        v
    });
    let err_t = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err_pipe.read_to_end(&mut v);
        v
    });
    let status = wait_or_kill(&mut child, COMMAND_TIMEOUT)
        .unwrap_or_else(|| panic!("{cmd:?} did not finish within {COMMAND_TIMEOUT:?}"));
    Output {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    }
}

/// Waits for the child up to `limit`, then kills it. Returns the status if it exited in time.
pub fn wait_or_kill(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let step = Duration::from_millis(20);
    let mut waited = Duration::ZERO;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if waited >= limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(step);
        waited += step;
    }
}

fn signal(child: &Child, sig: nix::sys::signal::Signal) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, sig);
}

/// A background process whose stdout lines are collected (e.g. `kubectl get -w`).
pub struct Streaming {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every line seen so far.
    pub seen: Vec<String>,
}

impl Streaming {
    /// Spawns the command with stdout piped into a line collector.
    pub fn spawn(cmd: Command) -> Streaming {
        Streaming::spawn_with_stdin(cmd, Stdio::null())
    }

    /// As [`Streaming::spawn`], reading its input from `stdin`.
    pub fn spawn_with_stdin(mut cmd: Command, stdin: Stdio) -> Streaming {
        cmd.stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("spawn streaming command");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Streaming {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Reads lines until one satisfies `pred`; panics after [`COMMAND_TIMEOUT`].
    pub fn wait_for(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Duration::from_secs(COMMAND_TIMEOUT.as_secs());
        let start = std::time::SystemTime::now();
        loop {
            let left = deadline.saturating_sub(start.elapsed().unwrap_or_default());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line matching {what} within {deadline:?}; seen: {:#?}",
                    self.seen
                ),
            }
        }
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value after `key` on the first line that contains it (kubeconfig is simple YAML).
pub fn yaml_field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.trim()
            .strip_prefix(key)
            .map(|v| v.trim().trim_matches('"').to_string())
    })
}

/// Last `n` lines of `s`.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn base64_decode(s: &str) -> Vec<u8> {
    let out = Command::new("base64")
        .arg("-d")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().expect("stdin").write_all(s.as_bytes())?;
            c.wait_with_output()
        })
        .expect("base64 -d");
    out.stdout
}

/// Writes `content` to a file named `name` in a fresh temp dir; returns (dir guard, path).
pub fn manifest(name: &str, content: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(name);
    std::fs::write(&path, content).expect("write manifest");
    (dir, path)
}

/// A server with one object of every served resource applied (see `fixtures::EVERYTHING`).
pub fn loaded() -> (Server, tempfile::TempDir) {
    let s = Server::start();
    let (dir, path) = manifest("everything.yaml", crate::fixtures::EVERYTHING);
    s.kubectl(&["apply", "-f", path.to_str().unwrap()]);
    (s, dir)
}

/// `--default-runtime host` for a node (`up`, `agent`) whose flags `args` make no choice: most
/// tests run their manifests' `command` from this machine, as a node started so does; the
/// image tests use the node's real default (`runc` as root) or a RuntimeClass.
pub fn host_runtime_unless_chosen(args: &[&str]) -> &'static [&'static str] {
    if !args.contains(&"--default-runtime") {
        &["--default-runtime", "host"]
    } else {
        &[]
    }
}
