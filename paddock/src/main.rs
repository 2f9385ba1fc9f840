//! The `paddock` binary: the command line. Start at [`Cli`]; each subcommand lives in its own
//! module (`server` runs the control plane, `up` everything in one process, `agent` a node of
//! a server that runs elsewhere; `node` is what `up` and `agent` share, `netns` its claim on
//! the network namespace; `images` the node's image store). Errors are `anyhow` here and nowhere else.

mod agent;
mod cli;
mod control;
mod images;
mod join;
// The port over kube-rs (controllers out of process); exercised by its test, not yet by a
// subcommand.
#[cfg(test)]
mod kube_cluster;
mod netns;
mod node;
mod progress;
mod server;
mod up;
mod users;

use clap::Parser;

// jemalloc rather than glibc's malloc: a node holds many small, long-lived objects per pod
// (pod objects, statuses, tasks) mixed with bursts of short-lived ones (API bodies, probe
// output), and glibc's per-thread arenas kept the bursts' memory: measured with the pods bench
// at 1,000 idle pods, the agent's anonymous memory was 76.8 MB with glibc, 62 MB with jemalloc
// (mimalloc was no better than glibc).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

// jemalloc's built-in options (its `malloc_conf` symbol; `_RJEM_MALLOC_CONF` still overrides):
// pages freed after a burst (a thousand pods starting at once) go back to the system within
// about a second instead of jemalloc's default ten, so an idle node's RSS shows what it holds.
#[cfg(feature = "jemalloc")]
#[allow(unsafe_code)]
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: &[u8; 20] = b"dirty_decay_ms:1000\0";

/// The umask paddock runs with: whatever it writes under its data dir (the store, keys, the
/// node's state, volumes, logs) is its owner's alone unless made otherwise on purpose. A backstop:
/// files are also created with explicit modes. Containers do not inherit it — the runtime
/// starts them with the usual 022.
const UMASK: u32 = 0o077;

/// Marks every descriptor paddock inherited beyond stdin, stdout and stderr close-on-exec:
/// what its parent left open (a shell's redirection, a CI runner's pipe, a lock a wrapper
/// holds) is not for the pods' processes, as a container runtime closes what it inherited
/// before starting a container. Marked rather than closed: paddock itself never uses them,
/// and whoever passed them may expect them open for its lifetime.
#[allow(unsafe_code)]
fn inherited_descriptors_close_on_exec() {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets a flag on open descriptors.
    let rc = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_close_range,
            3u32,
            u32::MAX,
            nix::libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc == 0 {
        return;
    }
    // Before Linux 5.11: one by one.
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .filter(|fd| *fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: F_SETFD on a descriptor number; a closed one (the directory's own) fails.
        unsafe { nix::libc::fcntl(fd, nix::libc::F_SETFD, nix::libc::FD_CLOEXEC) };
    }
}

fn main() -> std::process::ExitCode {
    // Before any thread exists, so every thread shares it.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(UMASK));
    inherited_descriptors_close_on_exec();
    let cli = cli::Cli::parse();
    init_tracing(cli.verbose);
    // As Go's runtime does: the soft open-file limit (often 1024) up to the hard one, so the
    // servers' connection caps, proxied connections and container logs fit; containers get
    // the original soft limit back (agent runtime).
    match accept::raise_nofile_limit() {
        Ok((old, new)) if old != new => tracing::debug!(old, new, "raised the open-file limit"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("paddock: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            cli::Command::Server(args) => server::run(args).await,
            cli::Command::Up(args) => up::run(args).await,
            cli::Command::Agent(args) => agent::run(args).await,
            cli::Command::Image(args) => images::run(args).await,
            cli::Command::User(args) => users::run_user(args).await,
            cli::Command::Token(args) => users::run_token(args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("paddock: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn,paddock=info,apiserver=info",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("PADDOCK_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        // stderr, written around `paddock up`'s live view when one is shown.
        .with_writer(|| progress::LogWriter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
