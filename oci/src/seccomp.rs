//! containerd's default seccomp profile (`contrib/seccomp/seccomp_default.go`, `DefaultProfile`)
//! ported as data: what `seccompProfile: RuntimeDefault` runs under. The unconditional allow
//! list is `seccomp_allowed.rs`, in upstream's order; the rules that depend on the
//! architecture, the kernel (≥ 4.8: `ptrace` and `process_vm_*`, always true on the kernels
//! paddock supports) and the container's bounding capabilities follow [`default_profile`].
//! Architectures: amd64, arm64 and riscv64 are ported; any other gets the common rules.

use oci_spec::runtime::{
    Arch, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompOperator, LinuxSyscall,
};

#[path = "seccomp_allowed.rs"]
mod allowed;
pub use allowed::ALLOWED;

const AF_ALG: u64 = 38;
const AF_VSOCK: u64 = 40;
const ENOSYS: u32 = 38;
/// `CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET |
/// CLONE_NEWCGROUP`.
const CLONE_NS_FLAGS: u64 =
    0x0002_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x2000_0000 | 0x4000_0000 | 0x0200_0000;

fn allow(names: &[&str]) -> LinuxSyscall {
    let mut s = LinuxSyscall::default();
    s.set_names(names.iter().map(|n| n.to_string()).collect());
    s.set_action(LinuxSeccompAction::ScmpActAllow);
    s.set_args(Some(Vec::new()));
    s
}

fn allow_if(name: &str, index: usize, value: u64, op: LinuxSeccompOperator) -> LinuxSyscall {
    let mut s = allow(&[name]);
    s.set_args(Some(vec![arg(index, value, None, op)]));
    s
}

fn arg(
    index: usize,
    value: u64,
    value_two: Option<u64>,
    op: LinuxSeccompOperator,
) -> LinuxSeccompArg {
    let b = LinuxSeccompArgBuilder::default()
        .index(index)
        .value(value)
        .op(op);
    let b = match value_two {
        Some(v) => b.value_two(v),
        None => b,
    };
    // Every field has a default, so the builder cannot fail.
    b.build().unwrap_or_default()
}

fn arches() -> Vec<Arch> {
    match std::env::consts::ARCH {
        "x86_64" => vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32],
        "aarch64" => vec![Arch::ScmpArchArm, Arch::ScmpArchAarch64],
        "riscv64" => vec![Arch::ScmpArchRiscv64],
        _ => Vec::new(),
    }
}

/// The profile for a container whose bounding set is `caps`.
pub fn default_profile(caps: &[Capability]) -> LinuxSeccomp {
    use LinuxSeccompOperator::{ScmpCmpEq, ScmpCmpGt, ScmpCmpLt, ScmpCmpMaskedEq};
    let mut syscalls = vec![
        allow(ALLOWED),
        // socket(2) for every family but AF_ALG and AF_VSOCK, as three single-condition rules
        // (see upstream's comment on why not one rule with two conditions).
        allow_if("socket", 0, AF_ALG, ScmpCmpLt),
        allow_if("socket", 0, AF_ALG + 1, ScmpCmpEq),
        allow_if("socket", 0, AF_VSOCK, ScmpCmpGt),
        allow_if("personality", 0, 0x0, ScmpCmpEq),
        allow_if("personality", 0, 0x0008, ScmpCmpEq),
        allow_if("personality", 0, 0x20000, ScmpCmpEq),
        allow_if("personality", 0, 0x20008, ScmpCmpEq),
        allow_if("personality", 0, 0xffff_ffff, ScmpCmpEq),
        // Kernel ≥ 4.8.
        allow(&["process_vm_readv", "process_vm_writev", "ptrace"]),
    ];
    match std::env::consts::ARCH {
        "x86_64" => syscalls.push(allow(&["arch_prctl", "modify_ldt"])),
        "aarch64" => syscalls.push(allow(&[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ])),
        "riscv64" => syscalls.push(allow(&["riscv_flush_icache", "riscv_hwprobe"])),
        _ => {}
    }
    let mut admin = false;
    for c in caps {
        match c {
            Capability::DacReadSearch => syscalls.push(allow(&["open_by_handle_at"])),
            Capability::SysAdmin => {
                admin = true;
                syscalls.push(allow(&[
                    "bpf",
                    "clone",
                    "clone3",
                    "fanotify_init",
                    "fsconfig",
                    "fsmount",
                    "fsopen",
                    "fspick",
                    "lookup_dcookie",
                    "mount",
                    "mount_setattr",
                    "move_mount",
                    "open_tree",
                    "perf_event_open",
                    "quotactl",
                    "quotactl_fd",
                    "setdomainname",
                    "sethostname",
                    "setns",
                    "syslog",
                    "umount",
                    "umount2",
                    "unshare",
                ]));
            }
            Capability::SysBoot => syscalls.push(allow(&["reboot"])),
            Capability::SysChroot => syscalls.push(allow(&["chroot"])),
            Capability::SysModule => {
                syscalls.push(allow(&["delete_module", "init_module", "finit_module"]))
            }
            Capability::SysPacct => syscalls.push(allow(&["acct"])),
            Capability::SysPtrace => syscalls.push(allow(&[
                "kcmp",
                "pidfd_getfd",
                "process_madvise",
                "process_vm_readv",
                "process_vm_writev",
                "ptrace",
            ])),
            Capability::SysRawio => syscalls.push(allow(&["iopl", "ioperm"])),
            Capability::SysTime => syscalls.push(allow(&[
                "settimeofday",
                "stime",
                "clock_settime",
                "clock_settime64",
            ])),
            Capability::SysTtyConfig => syscalls.push(allow(&["vhangup"])),
            Capability::SysNice => syscalls.push(allow(&[
                "get_mempolicy",
                "mbind",
                "set_mempolicy",
                "set_mempolicy_home_node",
            ])),
            Capability::Syslog => syscalls.push(allow(&["syslog"])),
            Capability::Bpf => syscalls.push(allow(&["bpf"])),
            Capability::Perfmon => syscalls.push(allow(&["perf_event_open"])),
            _ => {}
        }
    }
    if !admin {
        let mut clone = allow(&["clone"]);
        clone.set_args(Some(vec![arg(0, CLONE_NS_FLAGS, Some(0), ScmpCmpMaskedEq)]));
        syscalls.push(clone);
        // clone3 gets ENOSYS rather than EPERM so that libcs fall back to clone.
        let mut clone3 = LinuxSyscall::default();
        clone3.set_names(vec!["clone3".to_string()]);
        clone3.set_action(LinuxSeccompAction::ScmpActErrno);
        clone3.set_errno_ret(Some(ENOSYS));
        syscalls.push(clone3);
    }
    let mut s = LinuxSeccomp::default();
    s.set_default_action(LinuxSeccompAction::ScmpActErrno);
    s.set_architectures(Some(arches()));
    s.set_syscalls(Some(syscalls));
    s
}
