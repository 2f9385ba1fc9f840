//! Wall-clock time as Kubernetes writes it in objects (`metav1.Time`): the API server's
//! system fields, the controllers' conditions and events, and the leader-election lease all
//! use these two functions.

/// The current wall-clock time.
pub fn now() -> k8s_openapi::jiff::Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = i64::try_from(d.as_secs()).unwrap_or(0);
    let nanos = i32::try_from(d.subsec_nanos()).unwrap_or(0);
    k8s_openapi::jiff::Timestamp::new(secs, nanos)
        .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)
}

/// `t` as Kubernetes writes `metav1.Time`: RFC 3339 in UTC with whole seconds.
pub fn rfc3339(t: k8s_openapi::jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `t` as Kubernetes writes `metav1.MicroTime` (a Lease's `acquireTime`/`renewTime`, an
/// events.k8s.io `eventTime`): RFC 3339 in UTC with six fractional digits.
pub fn rfc3339_micro(t: k8s_openapi::jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let t = k8s_openapi::jiff::Timestamp::new(1_700_000_000, 123_456_789).unwrap();
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339_micro(t), "2023-11-14T22:13:20.123456Z");
    }
}
