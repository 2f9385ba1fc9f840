use k8s_openapi::api::core::v1::{EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::*;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).expect("valid timestamp")
}

/// A new event as the kubelet's recorder makes it.
fn made(reason: &str, message: &str, now: Timestamp) -> Event {
    Event {
        metadata: ObjectMeta {
            name: Some(event_name("p", now)),
            namespace: Some("ns".into()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            namespace: Some("ns".into()),
            name: Some("p".into()),
            uid: Some("u".into()),
            field_path: Some("spec.containers{c}".into()),
            ..Default::default()
        },
        reason: Some(reason.into()),
        message: Some(message.into()),
        source: Some(EventSource {
            component: Some("kubelet".into()),
            host: Some("n1".into()),
        }),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        count: Some(1),
        type_: Some("Warning".into()),
        ..Default::default()
    }
}

/// What the API server returns for a written event: the same with a resource version.
fn stored(mut e: Event, rv: &str) -> Event {
    e.metadata.resource_version = Some(rv.into());
    e
}

#[test]
fn names_are_the_object_name_and_hex_nanoseconds() {
    let t = Timestamp::from_nanosecond(1_700_000_000_123_456_789).expect("valid");
    assert_eq!(event_name("web-0", t), "web-0.17979cfe3d85cd15");
    let before_epoch = Timestamp::from_nanosecond(-255).expect("valid");
    assert_eq!(event_name("x", before_epoch), "x.-ff");
}

#[test]
fn the_key_is_upstreams_fields_concatenated() {
    let e = made("Unhealthy", "probe failed", at(1));
    assert_eq!(
        event_key(&e),
        "kubeletn1Podnspspec.containers{c}uv1WarningUnhealthyprobe failed"
    );
}

#[test]
fn the_first_event_is_created_and_repeats_patch_it() {
    let mut c = Correlator::default();
    let first = made("Unhealthy", "probe failed", at(1_000));
    let o = c.observe(&first);
    assert_eq!(o.patch, None);
    assert_eq!(o.event, first);
    c.update_state(&stored(o.event.clone(), "7"));

    let again = made("Unhealthy", "probe failed", at(1_010));
    let o = c.observe(&again);
    assert_eq!(o.event.metadata.name, first.metadata.name);
    assert_eq!(o.event.metadata.resource_version.as_deref(), Some("7"));
    assert_eq!(o.event.first_timestamp, Some(Time(at(1_000))));
    assert_eq!(o.event.last_timestamp, Some(Time(at(1_010))));
    assert_eq!(o.event.count, Some(2));
    assert_eq!(
        o.patch,
        Some(json!({
            "count": 2,
            "lastTimestamp": "1970-01-01T00:16:50Z",
            "message": "probe failed",
        }))
    );

    // A repeat counts on from the last observation even before the server answered.
    let o = c.observe(&made("Unhealthy", "probe failed", at(1_020)));
    assert_eq!(o.event.count, Some(3));
}

#[test]
fn a_different_message_reason_or_object_is_another_event() {
    let mut c = Correlator::default();
    c.observe(&made("Unhealthy", "a", at(1)));
    assert_eq!(c.observe(&made("Unhealthy", "b", at(2))).patch, None);
    assert_eq!(c.observe(&made("Killing", "a", at(3))).patch, None);
    let mut other = made("Unhealthy", "a", at(4));
    other.involved_object.field_path = Some("spec.containers{d}".into());
    assert_eq!(c.observe(&other).patch, None);
    assert_eq!(c.len(), 4);
}

#[test]
fn the_least_recently_used_key_is_evicted() {
    let mut c = Correlator::with_capacity(2);
    c.observe(&made("R", "a", at(1)));
    c.observe(&made("R", "b", at(2)));
    // Seeing "a" again makes "b" the least recently used.
    assert!(c.observe(&made("R", "a", at(3))).patch.is_some());
    c.observe(&made("R", "c", at(4)));
    assert_eq!(c.len(), 2);
    assert!(c.observe(&made("R", "a", at(5))).patch.is_some());
    assert_eq!(
        c.observe(&made("R", "b", at(6))).patch,
        None,
        "b was evicted"
    );
}

#[test]
fn the_servers_answer_replaces_the_observation() {
    let mut c = Correlator::default();
    let o = c.observe(&made("R", "a", at(1)));
    // The server holds the event with another count (written by an earlier run).
    let mut server = stored(o.event, "42");
    server.count = Some(9);
    c.update_state(&server);
    let o = c.observe(&made("R", "a", at(2)));
    assert_eq!(o.event.count, Some(10));
    assert_eq!(o.event.metadata.resource_version.as_deref(), Some("42"));
}

#[test]
fn an_empty_message_is_left_out_of_the_patch() {
    let mut c = Correlator::default();
    c.observe(&made("R", "", at(1)));
    let o = c.observe(&made("R", "", at(2)));
    assert_eq!(
        o.patch,
        Some(json!({"count": 2, "lastTimestamp": "1970-01-01T00:00:02Z"}))
    );
}
