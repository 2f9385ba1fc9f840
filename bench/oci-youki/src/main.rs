// The bundle, state dir and N come from bench/oci-runtime.sh --youki.
// Start latency of youki's libcontainer in process: create + start + exit of busybox `true`.
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bundle = std::path::PathBuf::from(&args[1]);
    let root = std::path::PathBuf::from(&args[2]);
    let n: usize = args[3].parse().unwrap();
    nix::sys::prctl::set_child_subreaper(true).unwrap();
    let mut lat = Vec::new();
    let cpu = || {
        let mut t = 0.0;
        for who in [nix::sys::resource::UsageWho::RUSAGE_SELF, nix::sys::resource::UsageWho::RUSAGE_CHILDREN] {
            let u = nix::sys::resource::getrusage(who).unwrap();
            for tv in [u.user_time(), u.system_time()] {
                t += tv.tv_sec() as f64 * 1e3 + tv.tv_usec() as f64 / 1e3;
            }
        }
        t
    };
    let cpu0 = cpu();
    for i in 0..n {
        let t0 = Instant::now();
        let mut c = ContainerBuilder::new(format!("y{i}"), SyscallType::default())
            .with_root_path(&root).unwrap()
            .as_init(&bundle)
            .with_systemd(false)
            .with_detach(true)
            .build()
            .unwrap_or_else(|e| { eprintln!("build: {e}"); std::process::exit(1) });
        c.start().unwrap_or_else(|e| { eprintln!("start: {e}"); std::process::exit(1) });
        let pid = c.pid().unwrap();
        match nix::sys::wait::waitpid(pid, None) {
            Ok(_) => {}
            Err(_) => while std::path::Path::new(&format!("/proc/{pid}")).exists() { std::thread::yield_now() },
        }
        lat.push(t0.elapsed().as_secs_f64() * 1000.0);
        c.refresh_status().ok();
        c.delete(true).unwrap_or_else(|e| eprintln!("delete: {e}"));
    }
    let per = (cpu() - cpu0) / n as f64;
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let hwm = std::fs::read_to_string("/proc/self/status").unwrap().lines().find(|l| l.starts_with("VmHWM")).unwrap().to_string();
    println!("libcontainer: create+start+exit median {:.2} ms p90 {:.2} ms (n={n}); CPU per container incl. delete {per:.1} ms; driver {hwm}", lat[n / 2], lat[(n * 9) / 10]);
}
