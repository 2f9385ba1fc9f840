//! Authorization: kube-apiserver's `--authorization-mode=Node,RBAC` behind the
//! privileged-group short-circuit (`system:masters` may do anything): the Node authorizer
//! ([`node_authorizer`] over [`node_graph`]) for nodes, then upstream's RBAC authorizer
//! (`plugin/pkg/auth/authorizer/rbac`), combined as upstream's union authorizer
//! ([`decide`]: the first that allows wins; the reasons of those without an opinion are
//! joined with newlines), run as a middleware
//! after authentication on every request that carries a [`UserInfo`]; impersonation headers
//! are honoured first, as upstream's impersonation filter does. A refusal is upstream's 403
//! (`pods is forbidden: User "x" cannot list resource "pods" in API group "" in the namespace
//! "y"`).
//!
//! Start at [`authorize`] (the middleware), [`decide`] (the chain) and [`Rbac::authorize`]
//! (RBAC's decision). The
//! request attributes are in [`attrs`], rule matching and coverage in [`rules`], the binding
//! index in [`index`], the default policy the server reconciles at start in [`bootstrap`],
//! the escalation checks on role and binding writes in [`escalation`], the access-review APIs
//! in [`review`] and impersonation in [`impersonate`].
//!
//! Requests without a user (the public paths the authentication filter lets through, and
//! in-process callers, which never pass through here) are the control plane's or public.

pub mod attrs;
pub mod bootstrap;
pub mod escalation;
pub mod impersonate;
pub mod index;
pub mod node_authorizer;
pub mod node_graph;
pub mod node_policy;
pub mod node_restriction;
pub mod review;
pub mod rules;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use api::status::{ApiError, StatusDetails};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use k8s_openapi::api::rbac::v1::PolicyRule;

use crate::params::Query;
use crate::response::error_response;
use crate::state::AppState;
use crate::user::UserInfo;
pub use attrs::Attributes;
use index::Index;

/// The group whose members may do anything (upstream `user.SystemPrivilegedGroup`).
pub const PRIVILEGED_GROUP: &str = "system:masters";

/// The RBAC authorizer over the registry's store: an index of the roles and bindings,
/// rebuilt on the first decision after any of them changed.
#[derive(Debug)]
pub struct Rbac {
    store: store::Store,
    /// Bumped (by the registry) after every write of a role or binding.
    generation: AtomicU64,
    cache: std::sync::RwLock<Option<(u64, Arc<Index>)>>,
}

/// A decision: allowed or not, and upstream's reason (`RBAC: allowed by ...`, or the
/// errors met while evaluating, `RBAC: role.rbac.authorization.k8s.io "x" not found`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request is allowed.
    pub allowed: bool,
    /// Why, or the evaluation errors.
    pub reason: String,
}

impl Rbac {
    /// An authorizer over `store`.
    pub fn new(store: store::Store) -> Rbac {
        Rbac {
            store,
            generation: AtomicU64::new(1),
            cache: std::sync::RwLock::new(None),
        }
    }

    /// Marks the index stale; the registry calls it after every role or binding write.
    pub fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The current index (rebuilt if a role or binding changed since it was built).
    pub fn index(&self) -> Arc<Index> {
        let generation = self.generation.load(Ordering::Acquire);
        if let Ok(guard) = self.cache.read()
            && let Some((g, idx)) = guard.as_ref()
            && *g == generation
        {
            return idx.clone();
        }
        let idx = Arc::new(Index::build(&self.store));
        if let Ok(mut guard) = self.cache.write() {
            *guard = Some((generation, idx.clone()));
        }
        idx
    }

    /// Upstream's union of the privileged-group authorizer and the RBAC authorizer.
    pub fn authorize(&self, user: &UserInfo, a: &Attributes) -> Decision {
        if user.groups.iter().any(|g| g == PRIVILEGED_GROUP) {
            return Decision {
                allowed: true,
                reason: String::new(),
            };
        }
        self.index().authorize(user, a)
    }

    /// The rules that apply to `user` in `namespace` (cluster-wide ones included) and the
    /// errors met resolving them (upstream `RulesFor`).
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> (Vec<PolicyRule>, Vec<String>) {
        self.index().rules_for(user, namespace)
    }
}

/// The chain `system:masters`, Node, RBAC (upstream's union authorizer): allowed by the
/// first that allows; otherwise refused with the reasons of each, newline-joined. The Node
/// authorizer's graph is consulted once it holds every write the store committed before the
/// request (a pod just bound is not refused for lag, nor one just deleted still honoured).
pub async fn decide(
    registry: &crate::registry::Registry,
    user: &UserInfo,
    a: &Attributes,
) -> Decision {
    if user.groups.iter().any(|g| g == PRIVILEGED_GROUP) {
        return Decision {
            allowed: true,
            reason: String::new(),
        };
    }
    let mut reasons: Vec<String> = Vec::new();
    if let Some(node) = node_restriction::node_identity(user) {
        let graph = registry.node_graph();
        if node_authorizer::uses_graph(a) {
            graph.sync(registry.store()).await;
        }
        match node_authorizer::authorize(graph, &user.name, node, a) {
            node_authorizer::NodeDecision::Allow => {
                return Decision {
                    allowed: true,
                    reason: String::new(),
                };
            }
            node_authorizer::NodeDecision::NoOpinion { reason, .. } => {
                if !reason.is_empty() {
                    reasons.push(reason);
                }
            }
        }
    }
    let d = registry.rbac().index().authorize(user, a);
    if d.allowed {
        return d;
    }
    if !d.reason.is_empty() {
        reasons.push(d.reason);
    }
    Decision {
        allowed: false,
        reason: reasons.join("\n"),
    }
}

/// Upstream `utilerrors.NewAggregate(errs).Error()`: one message alone, several deduplicated
/// in brackets.
pub fn aggregate_errors(errs: &[String]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for e in errs {
        if !seen.contains(&e.as_str()) {
            seen.push(e);
        }
    }
    match seen.as_slice() {
        [] => String::new(),
        [one] => one.to_string(),
        many => format!("[{}]", many.join(", ")),
    }
}

/// Upstream `responsewriters.Forbidden`: `forbiddenMessage` (plus `: reason`) inside
/// `NewForbidden` of the request's group/resource and name.
pub fn forbidden(user: &UserInfo, a: &Attributes, reason: &str) -> ApiError {
    let msg = if !a.resource_request {
        format!(
            "User {} cannot {} path {}",
            api::status::go_quote(&user.name),
            a.verb,
            api::status::go_quote(&a.path)
        )
    } else if !a.namespace.is_empty() {
        format!(
            "User {} cannot {} resource {} in API group {} in the namespace {}",
            api::status::go_quote(&user.name),
            a.verb,
            api::status::go_quote(&a.combined_resource()),
            api::status::go_quote(&a.api_group),
            api::status::go_quote(&a.namespace)
        )
    } else {
        format!(
            "User {} cannot {} resource {} in API group {} at the cluster scope",
            api::status::go_quote(&user.name),
            a.verb,
            api::status::go_quote(&a.combined_resource()),
            api::status::go_quote(&a.api_group)
        )
    };
    let msg = if reason.is_empty() {
        msg
    } else {
        format!("{msg}: {reason}")
    };
    forbidden_status(&a.api_group, &a.resource, &a.name, &msg)
}

/// Upstream `NewForbidden` for any group/resource: `forbidden: msg` when there is none.
pub fn forbidden_status(group: &str, resource: &str, name: &str, msg: &str) -> ApiError {
    let qualified = if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    };
    let message = if group.is_empty() && resource.is_empty() {
        format!("forbidden: {msg}")
    } else if name.is_empty() {
        format!("{qualified} is forbidden: {msg}")
    } else {
        format!(
            "{qualified} {} is forbidden: {msg}",
            api::status::go_quote(name)
        )
    };
    ApiError {
        code: 403,
        reason: "Forbidden".into(),
        message,
        details: Some(StatusDetails {
            name: name.to_string(),
            group: group.to_string(),
            kind: resource.to_string(),
            ..StatusDetails::default()
        }),
    }
}

/// The authorization middleware: impersonation, then the decision on the request's
/// attributes; a refusal answers 403 and the request goes no further.
pub async fn authorize(State(st): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let Some(user) = req.extensions().get::<UserInfo>().cloned() else {
        return next.run(req).await;
    };
    let rbac = st.registry.rbac();
    let user = match impersonate::apply(rbac, &user, req.headers_mut()) {
        Ok(Some(u)) => {
            req.extensions_mut().insert(u.clone());
            u
        }
        Ok(None) => user,
        Err(e) => return error_response(&e),
    };
    if user.groups.iter().any(|g| g == PRIVILEGED_GROUP) {
        return next.run(req).await;
    }
    let Ok(path) = crate::http::decoded_path(req.uri().path()) else {
        // The router refuses the path with 400.
        return next.run(req).await;
    };
    let q = Query::parse(req.uri().query());
    let a = Attributes::from_request(req.method(), &path, &q);
    let d = decide(&st.registry, &user, &a).await;
    if d.allowed {
        // Admission's NodeRestriction, for what the path and stored objects decide.
        if let Some(refused) = node_restriction::admit(&st.registry, &user, &a) {
            tracing::debug!(user = %user.name, verb = %a.verb, resource = %a.resource, "refused by NodeRestriction");
            return error_response(&refused);
        }
        next.run(req).await
    } else {
        tracing::debug!(user = %user.name, verb = %a.verb, resource = %a.resource, "forbidden");
        error_response(&forbidden(&user, &a, &d.reason))
    }
}

#[cfg(test)]
mod node_tests;
#[cfg(test)]
mod tests;
