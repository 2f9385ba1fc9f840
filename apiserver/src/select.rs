//! The `labelSelector` and `fieldSelector` query parameters of one request, parsed and
//! matched with the `api` crate's selectors (upstream `labels.Parse` / `fields` syntax and
//! per-kind field labels; an unsupported field is a 400).

use api::registry::ResourceInfo;
use api::selector::{FieldSelector, LabelSelector};
use api::status::ApiError;
use serde_json::Value;

/// Label and field selectors of one request; empty selectors match everything.
#[derive(Debug, Clone)]
pub struct Selector {
    labels: LabelSelector,
    fields: Option<FieldSelector>,
}

impl Selector {
    /// Parses the two query parameters for objects of `info`.
    pub fn parse(
        info: &ResourceInfo,
        label: Option<&str>,
        field: Option<&str>,
    ) -> Result<Selector, ApiError> {
        let labels = match label.map(str::trim).filter(|l| !l.is_empty()) {
            Some(l) => LabelSelector::parse(l)?,
            None => LabelSelector::default(),
        };
        let fields = match field.map(str::trim).filter(|f| !f.is_empty()) {
            Some(f) => Some(FieldSelector::parse(info, f)?).filter(|f| !f.is_empty()),
            None => None,
        };
        Ok(Selector { labels, fields })
    }

    /// Whether both selectors are empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.is_none()
    }

    /// The `metadata.name=X` the field selector pins, if any.
    pub fn pinned_name(&self) -> Option<&str> {
        self.fields.as_ref().and_then(|f| f.exact("metadata.name"))
    }

    /// Whether `obj` matches.
    pub fn matches(&self, obj: &Value) -> bool {
        self.labels.matches_value(obj) && self.fields.as_ref().is_none_or(|f| f.matches(obj))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::tests::info;
    use serde_json::json;

    #[test]
    fn labels() {
        let pod =
            json!({"metadata": {"name": "a", "labels": {"app": "web", "tier": "fe", "n": "5"}}});
        let m = |s: &str| {
            Selector::parse(info("Pod"), Some(s), None)
                .unwrap()
                .matches(&pod)
        };
        assert!(m("app=web"));
        assert!(m("app==web,tier"));
        assert!(!m("app!=web"));
        assert!(m("app in (web, db),tier notin (be)"));
        assert!(!m("!tier"));
        assert!(m("!nope"));
        assert!(m("n>4"));
        assert!(!m("n<4"));
        assert!(Selector::parse(info("Pod"), Some("app in web"), None).is_err());
        assert!(Selector::parse(info("Pod"), Some("a b=c"), None).is_err());
    }

    #[test]
    fn fields() {
        let pod = json!({"metadata": {"name": "a", "namespace": "d"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        let p = info("Pod");
        let m = |s: &str| Selector::parse(p, None, Some(s)).unwrap().matches(&pod);
        assert!(m(
            "spec.nodeName=n1,status.phase!=Succeeded,status.phase!=Failed"
        ));
        assert!(!m("metadata.name=b"));
        assert!(m("metadata.namespace==d"));
        assert!(m("spec.hostNetwork=false"));
        assert!(Selector::parse(p, None, Some("spec.foo=x")).is_err());
        let ev = json!({"involvedObject": {"uid": "u", "name": "x", "namespace": ""}, "source": {"component": "kubelet"}});
        let e = info("Event");
        let s = Selector::parse(e, None, Some("involvedObject.uid=u,involvedObject.name=x,involvedObject.namespace=,source=kubelet")).unwrap();
        assert!(s.matches(&ev));
        assert_eq!(
            Selector::parse(p, None, Some("metadata.name=x"))
                .unwrap()
                .pinned_name(),
            Some("x")
        );
    }
}
