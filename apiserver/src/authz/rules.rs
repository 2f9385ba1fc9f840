//! Policy rules: whether a rule allows a request (upstream `rbac.RuleAllows` and the
//! `rbacv1helpers` matchers: `*` wildcards, `resource/subresource` and `*/subresource`,
//! resource names, non-resource URLs with a trailing `*`), and whether one set of rules covers
//! another (upstream `validation.Covers`, the escalation check), with the compact rule text the
//! escalation message prints.

use k8s_openapi::api::rbac::v1::PolicyRule;

use super::attrs::Attributes;

fn list(v: &Option<Vec<String>>) -> &[String] {
    v.as_deref().unwrap_or(&[])
}

fn has(set: &[String], s: &str) -> bool {
    set.iter().any(|x| x == s)
}

/// Upstream `RuleAllows`.
pub fn rule_allows(a: &Attributes, rule: &PolicyRule) -> bool {
    let verb = has(&rule.verbs, "*") || has(&rule.verbs, &a.verb);
    if !verb {
        return false;
    }
    if !a.resource_request {
        return list(&rule.non_resource_urls).iter().any(|u| {
            u == &a.path
                || u.strip_suffix('*')
                    .is_some_and(|prefix| a.path.starts_with(prefix.trim_end_matches('*')))
        });
    }
    let groups = list(&rule.api_groups);
    if !(has(groups, "*") || has(groups, &a.api_group)) {
        return false;
    }
    let combined = a.combined_resource();
    let resource = list(&rule.resources).iter().any(|r| {
        r == "*"
            || *r == combined
            || (!a.subresource.is_empty()
                && r.len() == a.subresource.len() + 2
                && r.starts_with("*/")
                && r.ends_with(a.subresource.as_str()))
    });
    if !resource {
        return false;
    }
    let names = list(&rule.resource_names);
    names.is_empty() || has(names, &a.name)
}

/// Upstream `BreakdownRule`: one rule per (group, resource, verb[, name]) and per
/// (URL, verb).
fn breakdown(rule: &PolicyRule) -> Vec<PolicyRule> {
    let one = |s: &String| Some(vec![s.clone()]);
    let mut out = Vec::new();
    for g in list(&rule.api_groups) {
        for r in list(&rule.resources) {
            for v in &rule.verbs {
                let base = PolicyRule {
                    api_groups: one(g),
                    resources: one(r),
                    verbs: vec![v.clone()],
                    ..PolicyRule::default()
                };
                let names = list(&rule.resource_names);
                if names.is_empty() {
                    out.push(base);
                } else {
                    for n in names {
                        out.push(PolicyRule {
                            resource_names: one(n),
                            ..base.clone()
                        });
                    }
                }
            }
        }
    }
    for u in list(&rule.non_resource_urls) {
        for v in &rule.verbs {
            out.push(PolicyRule {
                non_resource_urls: one(u),
                verbs: vec![v.clone()],
                ..PolicyRule::default()
            });
        }
    }
    out
}

fn has_all(set: &[String], wanted: &[String]) -> bool {
    wanted.iter().all(|w| has(set, w))
}

fn resources_cover(set: &[String], wanted: &[String]) -> bool {
    if has(set, "*") || has_all(set, wanted) {
        return true;
    }
    wanted.iter().all(|path| {
        has(set, path)
            || path
                .split_once('/')
                .is_some_and(|(_, sub)| has(set, &format!("*/{sub}")))
    })
}

fn url_covers(owner: &str, sub: &str) -> bool {
    owner == sub
        || owner
            .strip_suffix('*')
            .is_some_and(|_| sub.starts_with(owner.trim_end_matches('*')))
}

/// Upstream `ruleCovers`: whether `owner` covers the broken-down `sub`.
fn rule_covers(owner: &PolicyRule, sub: &PolicyRule) -> bool {
    let verbs = has(&owner.verbs, "*") || has_all(&owner.verbs, &sub.verbs);
    let groups = has(list(&owner.api_groups), "*")
        || has_all(list(&owner.api_groups), list(&sub.api_groups));
    let resources = resources_cover(list(&owner.resources), list(&sub.resources));
    let urls = list(&sub.non_resource_urls).iter().all(|u| {
        list(&owner.non_resource_urls)
            .iter()
            .any(|o| url_covers(o, u))
    });
    let owner_names = list(&owner.resource_names);
    let names = if list(&sub.resource_names).is_empty() {
        owner_names.is_empty()
    } else {
        owner_names.is_empty() || has_all(owner_names, list(&sub.resource_names))
    };
    verbs && groups && resources && names && urls
}

/// Upstream `Covers`: whether `owner` rules cover every `servant` rule, and the broken-down
/// rules they do not.
pub fn covers(owner: &[PolicyRule], servant: &[PolicyRule]) -> (bool, Vec<PolicyRule>) {
    let missing: Vec<PolicyRule> = servant
        .iter()
        .flat_map(breakdown)
        .filter(|sub| !owner.iter().any(|o| rule_covers(o, sub)))
        .collect();
    (missing.is_empty(), missing)
}

/// Upstream `CompactRules`: simple rules (one group, one resource, at most one name, no URLs)
/// of the same group/resource/name merge their verbs.
pub fn compact(rules: Vec<PolicyRule>) -> Vec<PolicyRule> {
    let mut out: Vec<PolicyRule> = Vec::new();
    let mut simple: Vec<(String, String, Option<String>, PolicyRule)> = Vec::new();
    for rule in rules {
        let names = list(&rule.resource_names);
        let groups = list(&rule.api_groups);
        let resources = list(&rule.resources);
        let is_simple = names.len() <= 1
            && list(&rule.non_resource_urls).is_empty()
            && groups.len() == 1
            && resources.len() == 1;
        if !is_simple {
            out.push(rule);
            continue;
        }
        let key = (
            groups[0].clone(),
            resources[0].clone(),
            names.first().cloned(),
        );
        match simple
            .iter_mut()
            .find(|(g, r, n, _)| (g, r, n) == (&key.0, &key.1, &key.2))
        {
            Some((_, _, _, existing)) => existing.verbs.extend(rule.verbs),
            None => simple.push((key.0, key.1, key.2, rule)),
        }
    }
    out.extend(simple.into_iter().map(|(_, _, _, r)| r));
    out
}

/// Go's `%q` of a string slice: `["a" "b"]`.
pub fn go_quote_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| api::status::go_quote(s)).collect();
    format!("[{}]", quoted.join(" "))
}

/// Upstream `CompactString`: `{APIGroups:[""], Resources:["pods"], Verbs:["get"]}`.
pub fn compact_string(r: &PolicyRule) -> String {
    let mut parts = Vec::new();
    for (label, items) in [
        ("APIGroups", list(&r.api_groups)),
        ("Resources", list(&r.resources)),
        ("NonResourceURLs", list(&r.non_resource_urls)),
        ("ResourceNames", list(&r.resource_names)),
        ("Verbs", r.verbs.as_slice()),
    ] {
        if !items.is_empty() {
            parts.push(format!("{label}:{}", go_quote_list(items)));
        }
    }
    format!("{{{}}}", parts.join(", "))
}

#[cfg(test)]
pub(crate) fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    PolicyRule {
        api_groups: Some(v(groups)),
        resources: Some(v(resources)),
        verbs: v(verbs),
        ..PolicyRule::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(verb: &str, group: &str, resource: &str, sub: &str, name: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            resource_request: true,
            api_group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            name: name.into(),
            namespace: "ns".into(),
            ..Attributes::default()
        }
    }

    fn url(verb: &str, path: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            path: path.into(),
            ..Attributes::default()
        }
    }

    #[test]
    fn verbs_groups_resources_and_names_match_exactly_or_by_wildcard() {
        let r = rule(&[""], &["pods"], &["get", "list"]);
        assert!(rule_allows(&req("get", "", "pods", "", "p"), &r));
        assert!(!rule_allows(&req("delete", "", "pods", "", "p"), &r));
        assert!(!rule_allows(&req("get", "apps", "pods", "", "p"), &r));
        assert!(!rule_allows(&req("get", "", "pods", "log", "p"), &r));
        assert!(!rule_allows(&req("get", "", "services", "", "p"), &r));
        let any = rule(&["*"], &["*"], &["*"]);
        assert!(rule_allows(
            &req("escalate", "x.io", "things", "sub", "n"),
            &any
        ));
        let sub = rule(&[""], &["pods/log"], &["get"]);
        assert!(rule_allows(&req("get", "", "pods", "log", "p"), &sub));
        assert!(!rule_allows(&req("get", "", "pods", "", "p"), &sub));
        let star_sub = rule(&[""], &["*/status"], &["get"]);
        assert!(rule_allows(
            &req("get", "", "pods", "status", "p"),
            &star_sub
        ));
        assert!(!rule_allows(&req("get", "", "pods", "log", "p"), &star_sub));
        assert!(!rule_allows(&req("get", "", "pods", "", "p"), &star_sub));
        let named = PolicyRule {
            resource_names: Some(vec!["a".into()]),
            ..rule(&[""], &["configmaps"], &["get"])
        };
        assert!(rule_allows(&req("get", "", "configmaps", "", "a"), &named));
        assert!(!rule_allows(&req("get", "", "configmaps", "", "b"), &named));
        assert!(!rule_allows(&req("get", "", "configmaps", "", ""), &named));
    }

    #[test]
    fn non_resource_urls_match_exactly_or_by_trailing_star() {
        let r = PolicyRule {
            non_resource_urls: Some(vec!["/healthz".into(), "/api/*".into()]),
            verbs: vec!["get".into()],
            ..PolicyRule::default()
        };
        assert!(rule_allows(&url("get", "/healthz"), &r));
        assert!(!rule_allows(&url("get", "/healthz/etcd"), &r));
        assert!(rule_allows(&url("get", "/api/v1"), &r));
        assert!(!rule_allows(&url("post", "/healthz"), &r));
        let all = PolicyRule {
            non_resource_urls: Some(vec!["*".into()]),
            verbs: vec!["*".into()],
            ..PolicyRule::default()
        };
        assert!(rule_allows(&url("delete", "/anything"), &all));
        // A resource rule never allows a non-resource URL.
        assert!(!rule_allows(
            &url("get", "/healthz"),
            &rule(&["*"], &["*"], &["*"])
        ));
    }

    #[test]
    fn covers_breaks_rules_down_and_reports_what_is_missing() {
        let owner = vec![
            rule(&[""], &["pods", "*/status"], &["get", "list"]),
            rule(&["apps"], &["*"], &["*"]),
        ];
        assert!(covers(&owner, &[rule(&[""], &["pods"], &["get"])]).0);
        assert!(covers(&owner, &[rule(&[""], &["services/status"], &["list"])]).0);
        assert!(covers(&owner, &[rule(&["apps"], &["deployments"], &["delete"])]).0);
        let (ok, missing) = covers(
            &owner,
            &[rule(&[""], &["pods", "secrets"], &["get", "delete"])],
        );
        assert!(!ok);
        let texts: Vec<String> = compact(missing).iter().map(compact_string).collect();
        assert_eq!(
            texts,
            [
                "{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\"]}",
                "{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\" \"delete\"]}",
            ]
        );
        // A named owner rule does not cover the whole resource.
        let named = vec![PolicyRule {
            resource_names: Some(vec!["a".into()]),
            ..rule(&[""], &["configmaps"], &["get"])
        }];
        assert!(!covers(&named, &[rule(&[""], &["configmaps"], &["get"])]).0);
    }
}
