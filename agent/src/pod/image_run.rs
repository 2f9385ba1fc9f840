//! From a pod's container and its image to the runtime's [`ImageRun`] (runtime handler
//! `runc`), as the kubelet's `generateContainerConfig` and containerd's CRI plugin together
//! build a container: the command/args rule with the image's ENTRYPOINT/CMD, the image's `Env`
//! under the container's, `WorkingDir`, the user (`runAsUser`/`runAsGroup` over the image's
//! `USER`, names resolved in the image's `/etc/passwd` and `/etc/group`), `runAsNonRoot`
//! checked with the kubelet's texts, the `securityContext` as CRI carries it, and the
//! resources through the `oci` crate's kubelet cgroup layout.

use std::path::Path;

use image::config::{ImageConfigFile, ImageUser};
use image::store::ImageRecord;
use k8s_openapi::api::core::v1::{Container, Pod, PodSecurityContext, SecurityContext};
use oci::cgroups::{ContainerResources, PodResources, QosClass, Requirements};
use oci::spec::{Seccomp, Security, UserSpec};

use crate::runtime::ImageRun;

/// Largest `/etc/passwd` or `/etc/group` read from an image.
const MAX_ID_FILE: u64 = 1 << 20;

/// The container's effective security context (`DetermineEffectiveSecurityContext`): the
/// container's fields over the pod's.
struct Effective {
    run_as_user: Option<i64>,
    run_as_group: Option<i64>,
    run_as_non_root: Option<bool>,
    seccomp: Option<k8s_openapi::api::core::v1::SeccompProfile>,
}

fn effective(pod: Option<&PodSecurityContext>, c: Option<&SecurityContext>) -> Effective {
    Effective {
        run_as_user: c
            .and_then(|c| c.run_as_user)
            .or(pod.and_then(|p| p.run_as_user)),
        run_as_group: c
            .and_then(|c| c.run_as_group)
            .or(pod.and_then(|p| p.run_as_group)),
        run_as_non_root: c
            .and_then(|c| c.run_as_non_root)
            .or(pod.and_then(|p| p.run_as_non_root)),
        seccomp: c
            .and_then(|c| c.seccomp_profile.clone())
            .or(pod.and_then(|p| p.seccomp_profile.clone())),
    }
}

/// The kubelet's `verifyRunAsNonRoot` (pkg/kubelet/kuberuntime/security_context_others.go):
/// `image_user` is the image's `USER` (containerd reports a numeric one as a uid, a name as a
/// username; none as root).
pub fn verify_run_as_non_root(
    pod_name: &str,
    container: &str,
    run_as_non_root: Option<bool>,
    run_as_user: Option<i64>,
    image_user: Option<&str>,
) -> Result<(), String> {
    if run_as_non_root != Some(true) {
        return Ok(());
    }
    let pod = gofmt::quote(pod_name);
    if let Some(uid) = run_as_user {
        if uid == 0 {
            return Err(format!(
                "container's runAsUser breaks non-root policy (pod: {pod}, container: {container})"
            ));
        }
        return Ok(());
    }
    let user = image_user.and_then(ImageUser::parse);
    match user.as_ref().map(|u| (u.numeric_uid(), u.user.as_str())) {
        None | Some((Some(0), _)) => Err(format!(
            "container has runAsNonRoot and image will run as root (pod: {pod}, container: {container})"
        )),
        Some((None, name)) => Err(format!(
            "container has runAsNonRoot and image has non-numeric user ({name}), cannot verify user is non-root (pod: {pod}, container: {container})"
        )),
        Some((Some(_), _)) => Ok(()),
    }
}

/// uid, gid and additional gids of the process: `runAsUser`/`runAsGroup` over the image's
/// `USER` (containerd's `WithUser`/`WithUserID`: a uid's gid from the image's passwd, else 0),
/// the groups listing the user's name in the image's `/etc/group` (containerd's
/// `WithAdditionalGIDs`, the primary gid included).
fn user(
    eff: &Effective,
    image_user: Option<&str>,
    passwd: &str,
    group: &str,
) -> Result<UserSpec, String> {
    let (uid, mut gid) = match (eff.run_as_user, image_user.and_then(ImageUser::parse)) {
        (Some(uid), _) => {
            let uid = u32::try_from(uid).map_err(|_| format!("invalid runAsUser {uid}"))?;
            ImageUser {
                user: uid.to_string(),
                group: None,
            }
            .resolve(passwd, group)
            .unwrap_or((uid, 0))
        }
        (None, Some(u)) => u.resolve(passwd, group)?,
        (None, None) => (0, 0),
    };
    if let Some(g) = eff.run_as_group {
        gid = u32::try_from(g).map_err(|_| format!("invalid runAsGroup {g}"))?;
    }
    let name = passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 3 && f[2] == uid.to_string()).then(|| f[0].to_string())
    });
    let mut additional = vec![gid];
    if let Some(name) = name {
        for l in group.lines() {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() >= 4
                && f[3].split(',').any(|m| m == name)
                && let Ok(g) = f[2].parse::<u32>()
                && !additional.contains(&g)
            {
                additional.push(g);
            }
        }
    }
    Ok(UserSpec {
        uid,
        gid,
        additional_gids: additional,
    })
}

/// The container's `securityContext` as CRI carries it to the runtime.
fn security(
    c: Option<&SecurityContext>,
    seccomp: Option<&k8s_openapi::api::core::v1::SeccompProfile>,
    seccomp_root: &Path,
) -> Result<Security, String> {
    let mut s = Security::kubelet_default();
    let Some(sc) = c else {
        s.seccomp = seccomp_of(seccomp, seccomp_root)?;
        return Ok(s);
    };
    s.privileged = sc.privileged == Some(true);
    if let Some(caps) = &sc.capabilities {
        s.caps_add = caps.add.clone().unwrap_or_default();
        s.caps_drop = caps.drop.clone().unwrap_or_default();
    }
    // The kubelet sends NoNewPrivs only for `allowPrivilegeEscalation: false`
    // (`AddNoNewPrivileges`).
    s.no_new_privs = sc.allow_privilege_escalation == Some(false);
    s.read_only_rootfs = sc.read_only_root_filesystem == Some(true);
    if sc.proc_mount.as_deref() == Some("Unmasked") {
        s.masked_paths = Some(Vec::new());
        s.readonly_paths = Some(Vec::new());
    }
    s.seccomp = seccomp_of(seccomp, seccomp_root)?;
    Ok(s)
}

fn seccomp_of(
    p: Option<&k8s_openapi::api::core::v1::SeccompProfile>,
    root: &Path,
) -> Result<Seccomp, String> {
    Ok(
        match p.map(|p| (p.type_.as_str(), p.localhost_profile.as_deref())) {
            None | Some(("Unconfined", _)) => Seccomp::Unconfined,
            Some(("RuntimeDefault", _)) => Seccomp::RuntimeDefault,
            Some(("Localhost", Some(profile))) => Seccomp::Localhost {
                root: root.to_path_buf(),
                profile: profile.to_string(),
            },
            Some((t, _)) => return Err(format!("unsupported seccomp profile type {t:?}")),
        },
    )
}

fn quantity(c: &Container, limits: bool, key: &str) -> Option<api::quantity::Quantity> {
    c.resources
        .as_ref()
        .and_then(|r| {
            if limits {
                r.limits.as_ref()
            } else {
                r.requests.as_ref()
            }
        })
        .and_then(|m| m.get(key))
        .and_then(|q| api::quantity::Quantity::parse(&q.0).ok())
}

fn requirements(c: &Container) -> Requirements {
    Requirements {
        cpu_request_milli: quantity(c, false, "cpu").map(|q| q.milli_value()),
        cpu_limit_milli: quantity(c, true, "cpu").map(|q| q.milli_value()),
        memory_limit: quantity(c, true, "memory").map(|q| q.value()),
    }
}

/// The kubelet's `GetContainerOOMScoreAdjust` (pkg/kubelet/qos/policy.go).
fn oom_score_adj(qos: QosClass, c: &Container, memory_capacity: i64) -> i32 {
    match qos {
        QosClass::Guaranteed => -997,
        QosClass::BestEffort => 1000,
        QosClass::Burstable => {
            let req = quantity(c, false, "memory").map_or(0, |q| q.value());
            if memory_capacity <= 0 {
                return 999;
            }
            let adj = 1000 - (1000 * req) / memory_capacity;
            adj.clamp(3, 999) as i32
        }
    }
}

/// What [`build`] needs beyond the pod and the container.
pub struct ImageInputs<'a> {
    /// The image's record and config.
    pub record: &'a ImageRecord,
    /// The config.
    pub config: &'a ImageConfigFile,
    /// The image's layer directories.
    pub layers: Vec<std::path::PathBuf>,
    /// The image's `/etc/passwd` and `/etc/group` (empty if absent).
    pub passwd: String,
    /// See above.
    pub group: String,
    /// The node's seccomp profile directory (`Localhost` profiles are relative to it).
    pub seccomp_root: &'a Path,
    /// The node's memory capacity (for `oom_score_adj`).
    pub memory_capacity: i64,
}

/// Reads what [`build`] needs from the store (blocking: call off the async threads).
pub fn read_image_files(
    store: &image::Store,
    record: &ImageRecord,
) -> Result<(ImageConfigFile, String, String), String> {
    let config = store.config(record).map_err(|e| e.to_string())?;
    let read = |p: &str| -> Result<String, String> {
        Ok(store
            .read_image_file(record, p, MAX_ID_FILE)
            .map_err(|e| e.to_string())?
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default())
    };
    Ok((config, read("/etc/passwd")?, read("/etc/group")?))
}

/// The [`ImageRun`] of `container` (with `env` its final environment, `$(VAR)` expanded);
/// `Err` is the `CreateContainerConfigError` message.
pub fn build(
    pod: &Pod,
    pod_name: &str,
    container: &Container,
    env: &[(String, String)],
    inputs: ImageInputs<'_>,
) -> Result<ImageRun, String> {
    let spec = pod.spec.clone().unwrap_or_default();
    let eff = effective(
        spec.security_context.as_ref(),
        container.security_context.as_ref(),
    );
    let image_cfg = &inputs.config.config;
    let image_user = image_cfg.user.as_deref().filter(|u| !u.is_empty());
    verify_run_as_non_root(
        pod_name,
        &container.name,
        eff.run_as_non_root,
        eff.run_as_user,
        image_user,
    )?;
    let lookup = |name: &str| {
        env.iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let expand = |v: &Option<Vec<String>>| -> Vec<String> {
        v.iter()
            .flatten()
            .map(|a| probe::expand::expand(a, &lookup))
            .collect()
    };
    let args = image::config::container_args(
        &expand(&container.command),
        &expand(&container.args),
        image_cfg,
    )
    .map_err(str::to_string)?;
    let mut user = user(&eff, image_user, &inputs.passwd, &inputs.group)?;
    let pod_sc = spec.security_context.as_ref();
    let mut supplemental: Vec<u32> = pod_sc
        .and_then(|p| p.supplemental_groups.clone())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|g| u32::try_from(g).ok())
        .collect();
    if let Some(fs_group) = pod_sc
        .and_then(|p| p.fs_group)
        .and_then(|g| u32::try_from(g).ok())
    {
        supplemental.push(fs_group);
    }
    user.additional_gids.sort_unstable();
    let qos = pod
        .status
        .as_ref()
        .and_then(|s| s.qos_class.as_deref())
        .and_then(QosClass::parse);
    let req = requirements(container);
    let app: Vec<Requirements> = spec.containers.iter().map(requirements).collect();
    let init: Vec<Requirements> = spec
        .init_containers
        .iter()
        .flatten()
        .map(requirements)
        .collect();
    let q = qos.unwrap_or(QosClass::BestEffort);
    let cwd = container
        .working_dir
        .clone()
        .filter(|w| !w.is_empty())
        .or_else(|| image_cfg.working_dir.clone().filter(|w| !w.is_empty()));
    let _ = inputs.record;
    Ok(ImageRun {
        layers: inputs.layers,
        spec: oci::spec::ContainerSpec {
            args,
            image_env: image_cfg.env.clone().unwrap_or_default(),
            env: env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            cwd,
            tty: container.tty == Some(true),
            user,
            supplemental_groups: supplemental,
            security: Security {
                // Admission rejected the pod if it asks for AppArmor on a host without it.
                apparmor_profile: super::admit::container_profile(pod, &container.name)
                    .filter(|p| p.type_ == "Localhost")
                    .and_then(|p| p.localhost_profile),
                ..security(
                    container.security_context.as_ref(),
                    eff.seccomp.as_ref(),
                    inputs.seccomp_root,
                )?
            },
            resources: ContainerResources::from_kubernetes(
                req.cpu_request_milli,
                req.cpu_limit_milli,
                req.memory_limit,
            ),
            oom_score_adj: Some(oom_score_adj(q, container, inputs.memory_capacity)),
            ..Default::default()
        },
        qos,
        pod_resources: PodResources::for_pod(q, &app, &init),
        share_pid: spec.share_process_namespace == Some(true),
        host_pid: spec.host_pid == Some(true),
        host_ipc: spec.host_ipc == Some(true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_as_non_root_as_the_kubelet_words_it() {
        let p = "web_default(u1)";
        assert_eq!(
            verify_run_as_non_root(p, "c", Some(true), None, None),
            Err("container has runAsNonRoot and image will run as root (pod: \"web_default(u1)\", container: c)".into())
        );
        assert_eq!(
            verify_run_as_non_root(p, "c", Some(true), None, Some("0:0")),
            Err("container has runAsNonRoot and image will run as root (pod: \"web_default(u1)\", container: c)".into())
        );
        assert_eq!(
            verify_run_as_non_root(p, "c", Some(true), None, Some("www")),
            Err("container has runAsNonRoot and image has non-numeric user (www), cannot verify user is non-root (pod: \"web_default(u1)\", container: c)".into())
        );
        assert_eq!(
            verify_run_as_non_root(p, "c", Some(true), Some(0), Some("1000")),
            Err("container's runAsUser breaks non-root policy (pod: \"web_default(u1)\", container: c)".into())
        );
        assert_eq!(
            verify_run_as_non_root(p, "c", Some(true), None, Some("1000")),
            Ok(())
        );
        assert_eq!(
            verify_run_as_non_root(p, "c", Some(true), Some(5), None),
            Ok(())
        );
        assert_eq!(verify_run_as_non_root(p, "c", None, None, None), Ok(()));
    }

    #[test]
    fn users_resolve_in_the_image_and_run_as_overrides() {
        let passwd = "root:x:0:0::/root:/bin/sh\nwww:x:33:33::/www:/bin/sh\n";
        let group = "root:x:0:\nwww:x:33:\nlogs:x:40:www,other\n";
        let none = Effective {
            run_as_user: None,
            run_as_group: None,
            run_as_non_root: None,
            seccomp: None,
        };
        let u = user(&none, Some("www"), passwd, group).unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids), (33, 33, vec![33, 40]));
        let u = user(&none, None, passwd, group).unwrap();
        assert_eq!((u.uid, u.gid), (0, 0));
        let over = Effective {
            run_as_user: Some(33),
            run_as_group: Some(7),
            ..none
        };
        let u = user(&over, Some("root"), passwd, group).unwrap();
        assert_eq!((u.uid, u.gid), (33, 7));
        assert!(user(&over, Some("nobody"), passwd, group).is_ok());
        let none = Effective {
            run_as_user: None,
            run_as_group: None,
            run_as_non_root: None,
            seccomp: None,
        };
        assert!(user(&none, Some("nobody"), passwd, group).is_err());
    }
}
