//! The admin kubeconfig written next to the credentials: cluster `paddock` (server URL and
//! inline CA), user `admin` (bearer token), context `paddock`; mode 0600.

use std::path::Path;

use base64::Engine;

/// The kubeconfig text.
pub fn render(server: &str, ca_pem: &str, token: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem.as_bytes());
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: paddock\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: admin\n  user:\n    token: {token}\ncontexts:\n- name: paddock\n  context:\n    cluster: paddock\n    user: admin\n    namespace: default\ncurrent-context: paddock\npreferences: {{}}\n"
    )
}

/// A kubeconfig for `user` authenticating with a client certificate (`paddock user add`):
/// cluster `paddock`, user and context named after the user.
pub fn render_client_cert(
    server: &str,
    ca_pem: &str,
    user: &str,
    cert_pem: &str,
    key_pem: &str,
) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let quoted = serde_json::Value::String(user.to_string()).to_string();
    let context = serde_json::Value::String(format!("{user}@paddock")).to_string();
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: paddock\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: {quoted}\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\ncontexts:\n- name: {context}\n  context:\n    cluster: paddock\n    user: {quoted}\n    namespace: default\ncurrent-context: {context}\npreferences: {{}}\n",
        ca = b64(ca_pem),
        cert = b64(cert_pem),
        key = b64(key_pem),
    )
}

/// Writes the kubeconfig at `path` with mode 0600 (atomically, via a temporary file).
pub fn write(path: &Path, server: &str, ca_pem: &str, token: &str) -> std::io::Result<()> {
    crate::tls::write_private(path, render(server, ca_pem, token).as_bytes()).map_err(|e| match e {
        crate::tls::TlsError::Io { source, .. } => source,
        other => std::io::Error::other(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_private() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kubeconfig");
        write(&p, "https://127.0.0.1:1", "PEM", "tok").unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains("server: https://127.0.0.1:1"));
        assert!(text.contains("token: tok"));
        assert!(text.contains("current-context: paddock"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn a_full_disk_leaves_no_temporary_file_behind() {
        let fs = testkit::fs::SmallFs::new("64k").unwrap();
        let dir = fs.path();
        fs.fill().unwrap();
        let p = dir.join("kubeconfig");
        let err = write(&p, "https://127.0.0.1:1", &"PEM".repeat(50_000), "tok").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(28), "{err}");
        let left: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, ["filler"], "nothing but the filler");
    }
}
