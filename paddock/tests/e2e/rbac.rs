//! RBAC through kubectl: the admin creates a Role and RoleBinding for user `jane`;
//! `kubectl auth can-i --as jane` answers as upstream; `kubectl get pods --as jane` works where
//! she is bound (`team-x`) and is upstream's 403 elsewhere; `kubectl auth can-i --list`, `kubectl auth
//! whoami`; an impersonated user holding only `edit` may not create a Role granting more; the
//! bootstrap ClusterRoles and ClusterRoleBindings are listed.

use crate::support::Server;

const JANE: &str = r#"apiVersion: v1
kind: Namespace
metadata: {name: team-x}
---
apiVersion: v1
kind: Namespace
metadata: {name: team-y}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader, namespace: team-x}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: jane-reads-pods, namespace: team-x}
subjects:
- kind: User
  name: jane
  apiGroup: rbac.authorization.k8s.io
roleRef:
  kind: Role
  name: pod-reader
  apiGroup: rbac.authorization.k8s.io
"#;

const GREEDY: &str = r#"apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: greedy, namespace: team-y}
rules:
- apiGroups: [""]
  resources: [nodes]
  verbs: [get]
"#;

fn can_i(s: &Server, args: &[&str]) -> (bool, String) {
    let mut full = vec!["auth", "can-i"];
    full.extend_from_slice(args);
    let out = s.kubectl_full(&full, None);
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success(), stdout)
}

#[test]
fn roles_and_bindings_authorize_kubectl_as_upstream() {
    let s = Server::start();
    s.kubectl_in(&["apply", "-f", "-"], Some(JANE));

    // can-i: yes where bound, no elsewhere (exit code 1), as upstream.
    assert_eq!(
        can_i(&s, &["get", "pods", "-n", "team-x", "--as", "jane"]),
        (true, "yes".into())
    );
    assert_eq!(
        can_i(&s, &["delete", "pods", "-n", "team-x", "--as", "jane"]),
        (false, "no".into())
    );
    assert_eq!(
        can_i(&s, &["get", "pods", "-n", "team-y", "--as", "jane"]),
        (false, "no".into())
    );
    assert_eq!(
        can_i(&s, &["get", "pods", "-n", "team-x"]),
        (true, "yes".into())
    );

    // The request itself: allowed in x, upstream's 403 text in y and cluster-wide.
    let out = s.kubectl(&["get", "pods", "-n", "team-x", "--as", "jane"]);
    assert!(out.is_empty(), "{out}");
    let (code, err) = s.kubectl_err(&["get", "pods", "-n", "team-y", "--as", "jane"], None);
    assert_eq!(code, 1);
    assert!(
        err.contains(
            "Error from server (Forbidden): pods is forbidden: User \"jane\" cannot list resource \"pods\" in API group \"\" in the namespace \"team-y\""
        ),
        "{err}"
    );
    let (_, err) = s.kubectl_err(&["get", "deployments", "-A", "--as", "jane"], None);
    assert!(
        err.contains(
            "deployments.apps is forbidden: User \"jane\" cannot list resource \"deployments\" in API group \"apps\" at the cluster scope"
        ),
        "{err}"
    );

    // --list: her role's rule and the bootstrap policy's.
    let list = s.kubectl(&["auth", "can-i", "--list", "-n", "team-x", "--as", "jane"]);
    let lines: Vec<&str> = list.lines().collect();
    assert!(lines[0].starts_with("Resources"), "{list}");
    assert!(
        lines
            .iter()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["pods", "[]", "[]", "[get", "list", "watch]"]),
        "{list}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("selfsubjectaccessreviews.authorization.k8s.io")),
        "{list}"
    );
    assert!(lines.iter().any(|l| l.contains("[/version]")), "{list}");

    // whoami, as the admin and as jane.
    let me = s.kubectl(&["auth", "whoami"]);
    assert!(me.contains("system:admin"), "{me}");
    assert!(me.contains("[system:masters system:authenticated]"), "{me}");
    let jane = s.kubectl(&[
        "auth",
        "whoami",
        "--as",
        "jane",
        "-o",
        "jsonpath={.status.userInfo}",
    ]);
    assert_eq!(
        jane,
        r#"{"groups":["system:authenticated"],"username":"jane"}"#
    );

    let bob = s.kubectl(&[
        "auth",
        "whoami",
        "--as",
        "bob",
        "--as-group",
        "devs",
        "-o",
        "jsonpath={.status.userInfo.groups}",
    ]);
    assert_eq!(bob, r#"["devs","system:authenticated"]"#);
    let sa = s.kubectl(&[
        "auth",
        "can-i",
        "--list",
        "--as",
        "system:serviceaccount:team-x:robot",
    ]);
    assert!(
        sa.contains("selfsubjectreviews.authentication.k8s.io"),
        "{sa}"
    );
    assert!(!sa.contains("pods "), "{sa}");

    // Escalation: amy holds `admin` in team-y (edit plus roles and bindings) and may create
    // Roles there, but not one granting more than she holds.
    s.kubectl(&[
        "create",
        "rolebinding",
        "amy-edits",
        "-n",
        "team-y",
        "--clusterrole=admin",
        "--user=amy",
    ]);
    s.eventually("edit aggregates its rules", || {
        can_i(
            &s,
            &["create", "deployments", "-n", "team-y", "--as", "amy"],
        )
        .0
        .then_some(())
    });
    let (_, err) = s.kubectl_err(&["create", "-f", "-", "--as", "amy"], Some(GREEDY));
    assert!(
        err.contains(
            "roles.rbac.authorization.k8s.io \"greedy\" is forbidden: user \"amy\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"nodes\"], Verbs:[\"get\"]}"
        ),
        "{err}"
    );
    let fine = GREEDY
        .replace("nodes", "pods")
        .replace("[get]", "[get, list]");
    let out = s.kubectl_in(&["create", "-f", "-", "--as", "amy"], Some(&fine));
    assert_eq!(out.trim(), "role.rbac.authorization.k8s.io/greedy created");
    // edit cannot manage roles at all (that is admin's).
    s.kubectl(&[
        "create",
        "rolebinding",
        "bob-edits",
        "-n",
        "team-y",
        "--clusterrole=edit",
        "--user=bob",
    ]);
    assert_eq!(
        can_i(
            &s,
            &["create", "deployments", "-n", "team-y", "--as", "bob"]
        ),
        (true, "yes".into())
    );
    assert_eq!(
        can_i(&s, &["create", "roles", "-n", "team-y", "--as", "bob"]),
        (false, "no".into())
    );

    // The bootstrap objects.
    let got = s.kubectl(&["get", "clusterroles,clusterrolebindings"]);
    for name in [
        "clusterrole.rbac.authorization.k8s.io/cluster-admin",
        "clusterrole.rbac.authorization.k8s.io/admin",
        "clusterrole.rbac.authorization.k8s.io/edit",
        "clusterrole.rbac.authorization.k8s.io/view",
        "clusterrole.rbac.authorization.k8s.io/system:discovery",
        "clusterrolebinding.rbac.authorization.k8s.io/cluster-admin",
        "clusterrolebinding.rbac.authorization.k8s.io/system:public-info-viewer",
    ] {
        assert!(
            got.lines().any(|l| l.starts_with(&format!("{name} "))),
            "{name}:\n{got}"
        );
    }
    let crb = s.kubectl(&["get", "clusterrolebinding", "cluster-admin", "-o", "wide"]);
    let header: Vec<&str> = crb
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]
    );
    assert!(crb.contains("ClusterRole/cluster-admin"), "{crb}");

    // kubectl patch (a strategic merge patch by default) changes a role, which takes effect.
    s.kubectl(&[
        "patch",
        "role",
        "pod-reader",
        "-n",
        "team-x",
        "-p",
        r#"{"rules":[{"apiGroups":[""],"resources":["pods"],"verbs":["get","list","delete"]}]}"#,
    ]);
    assert_eq!(
        can_i(&s, &["delete", "pods", "-n", "team-x", "--as", "jane"]),
        (true, "yes".into())
    );
}
