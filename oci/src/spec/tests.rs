use serde_json::{Value, json};

use super::*;

fn base() -> ContainerSpec {
    ContainerSpec {
        args: vec!["/bin/sh".into(), "-c".into(), "true".into()],
        hostname: "web-0".into(),
        security: Security::kubelet_default(),
        namespaces: Namespaces::pod(42),
        cgroups_path: "/kubepods/besteffort/podu/c1".into(),
        resources: crate::cgroups::ContainerResources::from_kubernetes(None, None, None),
        ..ContainerSpec::default()
    }
}

fn json_of(c: &ContainerSpec) -> Value {
    serde_json::to_value(build(c).expect("spec")).expect("json")
}

fn caps(v: &Value, set: &str) -> Vec<String> {
    let mut c: Vec<String> = v["process"]["capabilities"][set]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    c.sort();
    c
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[test]
fn default_container_matches_containerd() {
    let v = json_of(&base());
    // The 14 default capabilities in bounding, effective, permitted; none inheritable or
    // ambient.
    for set in ["bounding", "effective", "permitted"] {
        assert_eq!(caps(&v, set), sorted(&DEFAULT_CAPS), "{set}");
    }
    assert!(v["process"]["capabilities"].get("inheritable").is_none());
    assert!(v["process"]["capabilities"].get("ambient").is_none());
    // WithoutDefaultSecuritySettings: no rlimits; WithNewPrivileges.
    assert!(v["process"].get("rlimits").is_none());
    assert_eq!(v["process"]["noNewPrivileges"], json!(false));
    assert_eq!(v["process"]["terminal"], json!(false));
    assert_eq!(v["process"]["cwd"], json!("/"));
    assert_eq!(v["process"]["user"], json!({"uid": 0, "gid": 0}));
    assert_eq!(
        v["process"]["env"],
        json!([DEFAULT_PATH_ENV, "HOSTNAME=web-0"])
    );
    assert_eq!(v["root"], json!({"path": "rootfs", "readonly": false}));
    // defaultMounts without /run, plus the read-only cgroup mount, in containerd's order.
    assert_eq!(
        v["mounts"],
        json!([
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ])
    );
    assert_eq!(
        v["linux"]["namespaces"],
        json!([
            {"type": "pid"},
            {"type": "ipc", "path": "/proc/42/ns/ipc"},
            {"type": "uts", "path": "/proc/42/ns/uts"},
            {"type": "mount"},
            {"type": "network", "path": "/proc/42/ns/net"},
        ])
    );
    assert_eq!(v["linux"]["maskedPaths"], json!(DEFAULT_MASKED_PATHS));
    assert_eq!(v["linux"]["readonlyPaths"], json!(DEFAULT_READONLY_PATHS));
    assert_eq!(
        v["linux"]["resources"]["devices"],
        json!([{"allow": false, "access": "rwm"}])
    );
    assert_eq!(v["linux"]["resources"]["cpu"]["shares"], json!(2));
    assert_eq!(
        v["linux"]["cgroupsPath"],
        json!("/kubepods/besteffort/podu/c1")
    );
    assert!(
        v["linux"].get("seccomp").is_none(),
        "Unconfined: no profile"
    );
    assert!(v["linux"].get("devices").is_none());
}

#[test]
fn capabilities_add_drop_and_all() {
    let s = |add: &[&str], drop: &[&str]| {
        let mut c = base();
        c.security.caps_add = add.iter().map(|s| s.to_string()).collect();
        c.security.caps_drop = drop.iter().map(|s| s.to_string()).collect();
        c
    };
    let v = json_of(&s(&["NET_ADMIN", "sys_time"], &["CHOWN", "KILL"]));
    let mut want: Vec<&str> = DEFAULT_CAPS
        .iter()
        .copied()
        .filter(|c| *c != "CAP_CHOWN" && *c != "CAP_KILL")
        .collect();
    want.extend(["CAP_NET_ADMIN", "CAP_SYS_TIME"]);
    assert_eq!(caps(&v, "effective"), sorted(&want));
    // drop ALL then add one: only that one.
    let v = json_of(&s(&["NET_BIND_SERVICE"], &["ALL"]));
    assert_eq!(
        caps(&v, "bounding"),
        vec!["CAP_NET_BIND_SERVICE".to_string()]
    );
    // add ALL, drop one: everything but it.
    let v = json_of(&s(&["ALL"], &["SYS_ADMIN"]));
    let b = caps(&v, "bounding");
    assert!(b.contains(&"CAP_SYS_MODULE".to_string()));
    assert!(!b.contains(&"CAP_SYS_ADMIN".to_string()));
    // An unknown name is an error naming it.
    let err = build(&s(&["NOT_A_CAP"], &[])).expect_err("unknown cap");
    assert!(err.to_string().contains("NOT_A_CAP"), "{err}");
}

#[test]
fn capability_bitmaps() {
    // containerd's default set is the well-known 0xa80425fb.
    let mut named: Vec<String> = capabilities_of_bitmap(0xa804_25fb)
        .iter()
        .map(|c| format!("CAP_{c}"))
        .collect();
    named.sort();
    assert_eq!(named, sorted(&DEFAULT_CAPS));
    assert_eq!(capabilities_of_bitmap(1 << 21), vec![Capability::SysAdmin]);
    assert!(capabilities_of_bitmap(1 << 50).is_empty());
}

#[test]
fn privileged_gets_everything() {
    let mut c = base();
    c.security.privileged = true;
    c.security.caps_drop = vec!["ALL".into()];
    c.security.seccomp = Seccomp::RuntimeDefault;
    let v = json_of(&c);
    let b = caps(&v, "bounding");
    assert!(
        b.contains(&"CAP_SYS_ADMIN".to_string()) && b.len() >= 38,
        "{b:?}"
    );
    assert!(v["linux"].get("maskedPaths").is_none());
    assert!(v["linux"].get("readonlyPaths").is_none());
    assert!(v["linux"].get("seccomp").is_none());
    assert_eq!(
        v["linux"]["resources"]["devices"],
        json!([{"allow": true, "access": "rwm"}])
    );
    let devices = v["linux"]["devices"].as_array().expect("host devices");
    assert!(devices.iter().any(|d| d["path"] == json!("/dev/null")));
    assert!(!devices.iter().any(|d| d["path"] == json!("/dev/console")));
    let sys = v["mounts"]
        .as_array()
        .and_then(|m| {
            m.iter()
                .find(|m| m["destination"] == json!("/sys"))
                .cloned()
        })
        .expect("/sys");
    assert_eq!(sys["options"], json!(["nosuid", "noexec", "nodev", "rw"]));
}

#[test]
fn security_context_fields() {
    let mut c = base();
    c.security.no_new_privs = true;
    c.security.read_only_rootfs = true;
    c.user = UserSpec {
        uid: 1000,
        gid: 3000,
        additional_gids: vec![3000, 10],
    };
    c.supplemental_groups = vec![4000, 10];
    c.cwd = Some("/work".into());
    c.tty = true;
    let v = json_of(&c);
    assert_eq!(v["process"]["noNewPrivileges"], json!(true));
    assert_eq!(v["root"]["readonly"], json!(true));
    assert_eq!(
        v["process"]["user"],
        json!({"uid": 1000, "gid": 3000, "additionalGids": [10, 3000, 4000]})
    );
    assert_eq!(v["process"]["cwd"], json!("/work"));
    assert_eq!(v["process"]["terminal"], json!(true));
    c.cwd = Some("relative".into());
    assert!(build(&c).is_err());
    c.cwd = None;
    c.args.clear();
    assert_eq!(
        build(&c).expect_err("no args").to_string(),
        "no command specified"
    );
}

#[test]
fn env_as_containerd_merges_it() {
    let mut c = base();
    c.image_env = vec!["PATH=/opt/bin".into(), "A=image".into()];
    c.env = vec!["A=pod".into(), "B=1".into(), "HOSTNAME".into()];
    let v = json_of(&c);
    // The image's PATH replaces the default in place; the container's A is appended after the
    // image's (only defaults are replaced in place, as upstream); HOSTNAME without `=` unsets.
    assert_eq!(
        v["process"]["env"],
        json!(["PATH=/opt/bin", "A=image", "A=pod", "B=1"])
    );
}

#[test]
fn namespaces_for_host_and_shared_pid() {
    let mut c = base();
    c.namespaces = Namespaces {
        network: NsMode::Node,
        ipc: NsMode::Node,
        uts: NsMode::Node,
        pid: NsMode::Pod("/proc/7/ns/pid".into()),
    };
    let v = json_of(&c);
    assert_eq!(
        v["linux"]["namespaces"],
        json!([{"type": "pid", "path": "/proc/7/ns/pid"}, {"type": "mount"}])
    );
    c.namespaces.pid = NsMode::Node;
    c.cgroup_v2 = true;
    let v = json_of(&c);
    assert_eq!(
        v["linux"]["namespaces"],
        json!([{"type": "mount"}, {"type": "cgroup"}])
    );
}

#[test]
fn bind_mounts_sorted_and_replacing_defaults() {
    let mut c = base();
    c.mounts = vec![
        BindMount {
            host_path: "/v/data".into(),
            container_path: "/var/lib/data".into(),
            read_only: true,
            propagation: Propagation::HostToContainer,
        },
        BindMount {
            host_path: "/p/hosts".into(),
            container_path: "/etc/hosts".into(),
            ..BindMount::default()
        },
        BindMount {
            host_path: "/p/shm".into(),
            container_path: "/dev/shm".into(),
            ..BindMount::default()
        },
    ];
    let v = json_of(&c);
    let m = v["mounts"].as_array().expect("mounts");
    let dsts: Vec<&str> = m.iter().filter_map(|m| m["destination"].as_str()).collect();
    assert_eq!(
        dsts,
        [
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/mqueue",
            "/sys",
            "/sys/fs/cgroup",
            "/etc/hosts",
            "/dev/shm",
            "/var/lib/data"
        ]
    );
    assert_eq!(
        m[8],
        json!({"destination": "/var/lib/data", "type": "bind", "source": "/v/data", "options": ["rbind", "rslave", "ro"]})
    );
    assert_eq!(m[6]["options"], json!(["rbind", "rprivate", "rw"]));
    assert_eq!(v["linux"]["rootfsPropagation"], json!("rslave"));
}

#[test]
fn runtime_default_seccomp_is_containerds_profile() {
    let mut c = base();
    c.security.seccomp = Seccomp::RuntimeDefault;
    let v = json_of(&c);
    let s = &v["linux"]["seccomp"];
    assert_eq!(s["defaultAction"], json!("SCMP_ACT_ERRNO"));
    if std::env::consts::ARCH == "x86_64" {
        assert_eq!(
            s["architectures"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
    }
    let rules = s["syscalls"].as_array().expect("syscalls");
    let first = rules[0]["names"].as_array().expect("names");
    assert_eq!(first.len(), crate::seccomp::ALLOWED.len());
    for n in ["read", "write", "execve", "openat", "socketcall", "clone3"] {
        assert_eq!(
            first.iter().any(|x| x == n),
            n != "clone3",
            "{n} in the unconditional list"
        );
    }
    for n in [
        "mount",
        "umount2",
        "unshare",
        "setns",
        "init_module",
        "reboot",
        "kexec_load",
    ] {
        assert!(
            !first.iter().any(|x| x == n),
            "{n} must not be allowed by default"
        );
    }
    // Without CAP_SYS_ADMIN: clone without namespace flags, clone3 → ENOSYS.
    assert!(rules.iter().any(|r| r["names"] == json!(["clone"])
        && r["args"] == json!([{"index": 0, "value": 2114060288u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}])));
    assert!(rules.iter().any(|r| r["names"] == json!(["clone3"])
        && r["action"] == json!("SCMP_ACT_ERRNO")
        && r["errnoRet"] == json!(38)));
    // socket: three single-condition rules keep AF_ALG (38) and AF_VSOCK (40) out.
    let socket: Vec<&Value> = rules
        .iter()
        .filter(|r| r["names"] == json!(["socket"]))
        .collect();
    assert_eq!(socket.len(), 3);
    assert_eq!(
        socket[0]["args"][0],
        json!({"index": 0, "value": 38, "op": "SCMP_CMP_LT"})
    );
    assert_eq!(
        socket[1]["args"][0],
        json!({"index": 0, "value": 39, "op": "SCMP_CMP_EQ"})
    );
    assert_eq!(
        socket[2]["args"][0],
        json!({"index": 0, "value": 40, "op": "SCMP_CMP_GT"})
    );
    // With CAP_SYS_ADMIN the admin syscalls are allowed and clone is unconditional.
    c.security.caps_add = vec!["SYS_ADMIN".into()];
    let v = json_of(&c);
    let rules = v["linux"]["seccomp"]["syscalls"]
        .as_array()
        .expect("syscalls")
        .clone();
    assert!(rules.iter().any(|r| {
        r["names"]
            .as_array()
            .is_some_and(|n| n.iter().any(|x| x == "mount"))
    }));
    assert!(!rules.iter().any(|r| r["names"] == json!(["clone3"])));
}

#[test]
fn localhost_seccomp_profile() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::create_dir_all(dir.path().join("profiles")).expect("mkdir");
    std::fs::write(
        dir.path().join("profiles/audit.json"),
        r#"{"defaultAction":"SCMP_ACT_LOG","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#,
    )
    .expect("write");
    let mut c = base();
    c.security.seccomp = Seccomp::Localhost {
        root: dir.path().to_path_buf(),
        profile: "profiles/audit.json".into(),
    };
    let v = json_of(&c);
    assert_eq!(
        v["linux"]["seccomp"]["defaultAction"],
        json!("SCMP_ACT_LOG")
    );
    for bad in ["../etc/x.json", "/abs.json", ""] {
        c.security.seccomp = Seccomp::Localhost {
            root: dir.path().to_path_buf(),
            profile: bad.into(),
        };
        assert!(build(&c).is_err(), "{bad:?} accepted");
    }
    c.security.seccomp = Seccomp::Localhost {
        root: dir.path().to_path_buf(),
        profile: "missing.json".into(),
    };
    let err = build(&c).expect_err("missing");
    assert!(err.to_string().contains("missing.json"), "{err}");
}
