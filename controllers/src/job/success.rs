//! The Job success policy (upstream `pkg/controller/job/success_policy.go`): an Indexed Job
//! whose succeeded indexes satisfy one of `spec.successPolicy.rules` is done — the
//! `SuccessCriteriaMet` condition with reason `SuccessPolicy` and "Matched rules at index N",
//! its remaining pods deleted, then `Complete` with the same reason and message.

use std::collections::BTreeSet;

use k8s_openapi::api::batch::v1::SuccessPolicy;

use super::parse_indexes;

/// `batch.JobReasonSuccessPolicy`.
pub(super) const REASON: &str = "SuccessPolicy";

/// The message of the first rule `succeeded` satisfies (`matchSuccessPolicy`).
pub(super) fn matched(
    policy: Option<&SuccessPolicy>,
    completions: i32,
    succeeded: &BTreeSet<i32>,
) -> Option<String> {
    let policy = policy?;
    if succeeded.is_empty() {
        return None;
    }
    for (i, rule) in policy.rules.iter().enumerate() {
        let hit = match (&rule.succeeded_indexes, rule.succeeded_count) {
            (Some(ix), count) => {
                let required = parse_indexes(ix, completions);
                // A rule whose indexes do not parse (or lie beyond completions) is skipped.
                if required.is_empty() {
                    continue;
                }
                let contains = required.intersection(succeeded).count();
                contains == required.len()
                    || count.is_some_and(|c| {
                        i64::try_from(contains).unwrap_or(i64::MAX) >= i64::from(c)
                    })
            }
            (None, Some(c)) => i64::try_from(succeeded.len()).unwrap_or(i64::MAX) >= i64::from(c),
            (None, None) => false,
        };
        if hit {
            return Some(format!("Matched rules at index {i}"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(v: serde_json::Value) -> SuccessPolicy {
        serde_json::from_value(v).expect("policy")
    }

    fn set(ix: &[i32]) -> BTreeSet<i32> {
        ix.iter().copied().collect()
    }

    #[test]
    fn rules_match_as_upstream_matches_them() {
        // succeededIndexes alone: all of them.
        let p = policy(serde_json::json!({"rules": [{"succeededIndexes": "0,2-3"}]}));
        assert_eq!(matched(Some(&p), 5, &set(&[0, 2])), None);
        assert_eq!(
            matched(Some(&p), 5, &set(&[0, 2, 3, 4])).as_deref(),
            Some("Matched rules at index 0")
        );
        // With succeededCount: that many of them.
        let p = policy(
            serde_json::json!({"rules": [{"succeededIndexes": "0-3", "succeededCount": 2}]}),
        );
        assert_eq!(matched(Some(&p), 10, &set(&[4, 5, 0])), None);
        assert!(matched(Some(&p), 10, &set(&[4, 1, 3])).is_some());
        // succeededCount alone: any indexes; the first matching rule names itself.
        let p = policy(serde_json::json!({"rules": [
            {"succeededIndexes": "9"},
            {"succeededCount": 2}
        ]}));
        assert_eq!(
            matched(Some(&p), 10, &set(&[3, 7])).as_deref(),
            Some("Matched rules at index 1")
        );
        // Indexes beyond completions are cut off; a rule left empty is skipped.
        let p = policy(
            serde_json::json!({"rules": [{"succeededIndexes": "7-9"}, {"succeededIndexes": "1-20"}]}),
        );
        assert_eq!(
            matched(Some(&p), 3, &set(&[1, 2])).as_deref(),
            Some("Matched rules at index 1")
        );
        // Nothing succeeded, or no policy: no match.
        let p = policy(serde_json::json!({"rules": [{"succeededCount": 0}]}));
        assert_eq!(matched(Some(&p), 3, &set(&[])), None);
        assert_eq!(matched(None, 3, &set(&[0, 1, 2])), None);
    }
}
