//! The image config as Kubernetes uses it — Entrypoint, Cmd, Env, WorkingDir, User (exposed
//! ports are ignored, as the kubelet ignores them) — and the rule that combines a container's
//! `command`/`args` with them ([`container_args`], containerd CRI's `WithProcessArgs`, which is
//! what the kubelet's documented table describes).

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, Result};

/// The config blob (`application/vnd.oci.image.config.v1+json` or Docker's).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImageConfigFile {
    /// Go's GOARCH name.
    #[serde(default)]
    pub architecture: String,
    /// Go's GOOS name.
    #[serde(default)]
    pub os: String,
    /// The execution defaults.
    #[serde(default)]
    pub config: ImageConfig,
    /// The layers' diff-ids.
    pub rootfs: RootFs,
}

/// `rootfs` of the config.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The uncompressed layers' digests, base first.
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

/// `config` of the config: what a container gets unless its spec says otherwise.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageConfig {
    /// `USER`: name, uid, `name:group` or `uid:gid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `ENV`, `NAME=value` entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    /// `ENTRYPOINT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// `CMD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// `WORKDIR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
}

impl ImageConfigFile {
    /// Parses a config blob.
    pub fn parse(bytes: &[u8]) -> Result<ImageConfigFile> {
        serde_json::from_slice(bytes)
            .map_err(|e| Error::Format(format!("invalid image config: {e}")))
    }
}

/// The error when neither the container nor the image gives a command (containerd's text;
/// the kubelet shows it under `CreateContainerError`).
pub const NO_COMMAND: &str = "no command specified";

/// The process arguments of a container: containerd CRI's `WithProcessArgs`.
///
/// - `command` given: it replaces ENTRYPOINT, and CMD is dropped; `args` (if any) follow it.
/// - `command` empty: ENTRYPOINT (unless it is the single empty string `[""]`, Docker's way of
///   clearing it), followed by `args` if given, else CMD.
pub fn container_args(
    command: &[String],
    args: &[String],
    image: &ImageConfig,
) -> std::result::Result<Vec<String>, &'static str> {
    let mut command = command.to_vec();
    let mut args = args.to_vec();
    if command.is_empty() {
        if args.is_empty() {
            args = image.cmd.clone().unwrap_or_default();
        }
        let ep = image.entrypoint.clone().unwrap_or_default();
        if !(ep.len() == 1 && ep[0].is_empty()) {
            command = ep;
        }
    }
    if command.is_empty() && args.is_empty() {
        return Err(NO_COMMAND);
    }
    command.extend(args);
    Ok(command)
}

/// The image's `User` split as containerd reads it: a user (name or uid) and an optional
/// group (name or gid). Empty means root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUser {
    /// Name or numeric uid.
    pub user: String,
    /// Name or numeric gid, if given.
    pub group: Option<String>,
}

impl ImageUser {
    /// Splits `user[:group]`.
    pub fn parse(s: &str) -> Option<ImageUser> {
        if s.is_empty() {
            return None;
        }
        let (u, g) = match s.split_once(':') {
            Some((u, g)) => (u, Some(g.to_string())),
            None => (s, None),
        };
        Some(ImageUser {
            user: u.to_string(),
            group: g,
        })
    }

    /// The uid if the user is numeric (the kubelet's `runAsNonRoot` check works on this alone:
    /// a non-numeric user cannot be verified as non-root).
    pub fn numeric_uid(&self) -> Option<u32> {
        self.user.parse().ok()
    }

    /// uid and gid from the image's `/etc/passwd` and `/etc/group` contents (as
    /// runc's `user.GetExecUser`): a numeric user not in passwd is used as is with gid 0 (or
    /// its numeric group); a name must be found.
    pub fn resolve(&self, passwd: &str, group: &str) -> std::result::Result<(u32, u32), String> {
        let entry = passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4 && (f[0] == self.user || f[2] == self.user))
                .then(|| (f[2].parse::<u32>().ok(), f[3].parse::<u32>().ok()))
        });
        let (uid, mut gid) = match (entry, self.numeric_uid()) {
            (Some((Some(u), g)), _) => (u, g.unwrap_or(0)),
            (_, Some(u)) => (u, 0),
            _ => {
                return Err(format!(
                    "unable to find user {}: no matching entries in passwd file",
                    self.user
                ));
            }
        };
        if let Some(g) = &self.group {
            gid = match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => group
                    .lines()
                    .find_map(|l| {
                        let f: Vec<&str> = l.split(':').collect();
                        (f.len() >= 3 && f[0] == g.as_str())
                            .then(|| f[2].parse::<u32>().ok())
                            .flatten()
                    })
                    .ok_or_else(|| {
                        format!("unable to find group {g}: no matching entries in group file")
                    })?,
            };
        }
        Ok((uid, gid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    fn image(ep: Option<&[&str]>, cmd: Option<&[&str]>) -> ImageConfig {
        ImageConfig {
            entrypoint: ep.map(v),
            cmd: cmd.map(v),
            ..Default::default()
        }
    }

    /// containerd's TestContainerSpecCommand table.
    #[test]
    #[allow(clippy::type_complexity)]
    fn containerd_command_table() {
        let cases: &[(
            &str,
            &[&str],
            &[&str],
            Option<&[&str]>,
            Option<&[&str]>,
            Option<&[&str]>,
        )] = &[
            (
                "cri entrypoint",
                &["a", "b"],
                &[],
                Some(&["c", "d"]),
                Some(&["e", "f"]),
                Some(&["a", "b"]),
            ),
            (
                "cri entrypoint even if empty",
                &[""],
                &["a", "b"],
                Some(&["c", "d"]),
                Some(&["e", "f"]),
                Some(&["", "a", "b"]),
            ),
            (
                "cri entrypoint and args",
                &["a", "b"],
                &["c", "d"],
                Some(&["e", "f"]),
                Some(&["g", "h"]),
                Some(&["a", "b", "c", "d"]),
            ),
            (
                "cri entrypoint and image args",
                &["a", "b"],
                &[],
                None,
                Some(&["c", "d"]),
                Some(&["a", "b"]),
            ),
            (
                "image entrypoint and cri args",
                &[],
                &["a", "b"],
                Some(&["c", "d"]),
                Some(&["e", "f"]),
                Some(&["c", "d", "a", "b"]),
            ),
            (
                "image entrypoint and image args",
                &[],
                &[],
                Some(&["a", "b"]),
                Some(&["c", "d"]),
                Some(&["a", "b", "c", "d"]),
            ),
            (
                "image entrypoint [\"\"] dropped",
                &[],
                &[],
                Some(&[""]),
                Some(&["a", "b"]),
                Some(&["a", "b"]),
            ),
            (
                "image args",
                &[],
                &[],
                None,
                Some(&["a", "b"]),
                Some(&["a", "b"]),
            ),
            ("nothing", &[], &[], None, None, None),
        ];
        for (name, cmd, args, ep, icmd, want) in cases {
            let got = container_args(&v(cmd), &v(args), &image(*ep, *icmd));
            match want {
                Some(w) => assert_eq!(got, Ok(v(w)), "{name}"),
                None => assert_eq!(got, Err(NO_COMMAND), "{name}"),
            }
        }
    }

    /// The table in the Kubernetes docs ("Define a Command and Arguments for a Container").
    #[test]
    fn kubernetes_docs_table() {
        let img = image(Some(&["/ep-1"]), Some(&["foo", "bar"]));
        let run = |c: &[&str], a: &[&str]| container_args(&v(c), &v(a), &img).unwrap();
        assert_eq!(run(&[], &[]), v(&["/ep-1", "foo", "bar"]));
        assert_eq!(run(&["/ep-2"], &[]), v(&["/ep-2"]));
        assert_eq!(run(&[], &["zoo", "boo"]), v(&["/ep-1", "zoo", "boo"]));
        assert_eq!(
            run(&["/ep-2"], &["zoo", "boo"]),
            v(&["/ep-2", "zoo", "boo"])
        );
    }

    #[test]
    fn users_resolve_from_passwd() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n";
        let group = "root:x:0:\nstaff:x:50:\n";
        let r = |s: &str| ImageUser::parse(s).unwrap().resolve(passwd, group);
        assert_eq!(r("nobody"), Ok((65534, 65534)));
        assert_eq!(r("1000"), Ok((1000, 0)));
        assert_eq!(r("1000:50"), Ok((1000, 50)));
        assert_eq!(r("nobody:staff"), Ok((65534, 50)));
        assert!(
            r("ghost")
                .unwrap_err()
                .contains("unable to find user ghost")
        );
        assert!(r("0:nogroup").is_err());
        assert_eq!(ImageUser::parse(""), None);
    }

    #[test]
    fn parses_a_config_with_docker_field_names() {
        let c = ImageConfigFile::parse(br#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Entrypoint":["/bin/sh"],"Cmd":["-c","true"],"WorkingDir":"/w","User":"1:2","ExposedPorts":{"80/tcp":{}}},"rootfs":{"type":"layers","diff_ids":[]}}"#).unwrap();
        assert_eq!(c.config.entrypoint, Some(v(&["/bin/sh"])));
        assert_eq!(c.config.working_dir.as_deref(), Some("/w"));
        assert_eq!(c.config.user.as_deref(), Some("1:2"));
    }
}
