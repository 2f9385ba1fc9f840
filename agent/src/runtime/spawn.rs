//! Starting a program in a container: resolving it as runc does (Go's `exec.LookPath` on the
//! container's `PATH`) and naming a failed spawn in the runtime's words. Shared by container
//! starts and exec.

use std::path::{Path, PathBuf};

use super::RuntimeError;
use super::isolate;
use super::sys::Step;

/// The first executable `name` in the directories of `path` (a `PATH` value).
pub(super) fn find_in_path(name: &str, path: &str) -> Option<PathBuf> {
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Resolves the program like runc (Go's `exec.LookPath` on the container's `PATH`).
pub(crate) fn resolve_program(
    program: &str,
    path_env: &str,
    cwd: &Path,
    checkable: bool,
) -> Result<PathBuf, RuntimeError> {
    if program.is_empty() {
        return Err(RuntimeError::NoCommand);
    }
    if !program.contains('/') {
        return find_in_path(program, path_env)
            .ok_or_else(|| RuntimeError::ExecutableNotFound(program.to_string()));
    }
    let full = cwd.join(program);
    if checkable {
        match std::fs::metadata(&full) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RuntimeError::NoSuchFile(program.to_string()));
            }
            Ok(m) if m.is_dir() || !is_executable(&full) => {
                return Err(RuntimeError::PermissionDenied(program.to_string()));
            }
            _ => {}
        }
    }
    Ok(PathBuf::from(program))
}

/// Names the cause of a failed container start in the runtime's words.
pub(crate) fn spawn_error(
    program: &str,
    cwd: &Path,
    labels: &[(usize, String)],
    sub_paths: &[(usize, String, String)],
    e: isolate::SpawnError,
) -> RuntimeError {
    let text = gofmt::errno_text(&e.error);
    let sub_path = |i: usize| {
        let (volume, container) = sub_paths
            .iter()
            .find(|(n, _, _)| *n == i)
            .map(|(_, v, c)| (v.clone(), c.clone()))
            .unwrap_or_default();
        // The detail stays in the node's log, as the kubelet keeps it out of the status.
        tracing::warn!(%volume, %container, error = %text, "subPath refused");
        (volume, container)
    };
    match e.step {
        Some(Step::SubPathOpen(i)) => {
            let (volume, container) = sub_path(i);
            RuntimeError::SubPathOpen { volume, container }
        }
        Some(Step::SubPathCreate(i)) => {
            let (volume, container) = sub_path(i);
            RuntimeError::SubPathCreate { volume, container }
        }
        Some(Step::Chdir) => RuntimeError::WorkingDir {
            path: cwd.to_path_buf(),
            message: text,
        },
        Some(Step::Op(i)) => {
            let label = labels
                .iter()
                .find(|(n, _)| *n == i)
                .map_or("set up mounts", |(_, l)| l.as_str());
            RuntimeError::Volume(format!("failed to {label}: {text}"))
        }
        Some(step) => RuntimeError::Sandbox(format!("entering the pod failed at {step:?}: {text}")),
        None => match e.error.raw_os_error() {
            Some(nix::libc::ENOENT) if !program.contains('/') => {
                RuntimeError::ExecutableNotFound(program.to_string())
            }
            Some(nix::libc::ENOENT) => RuntimeError::NoSuchFile(program.to_string()),
            Some(nix::libc::EACCES) => RuntimeError::PermissionDenied(program.to_string()),
            _ => RuntimeError::Spawn {
                program: program.to_string(),
                message: text,
            },
        },
    }
}
