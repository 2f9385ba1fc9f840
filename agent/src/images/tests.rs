use std::collections::HashMap;
use std::sync::Arc;

use super::*;

/// An image store in memory: `images` present, pulls succeed for `pullable` (after `delay`)
/// and fail with the runtime's text otherwise.
#[derive(Default)]
struct Store {
    images: Mutex<HashMap<String, String>>,
    pullable: HashMap<String, u64>,
    pulls: Mutex<usize>,
    delay: Duration,
}

impl ImageService for Arc<Store> {
    fn normalize(&self, image: &str) -> Result<String, String> {
        if image.is_empty() || image.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(format!(
                "Failed to apply default image tag {image:?}: invalid reference format"
            ));
        }
        Ok(if image.contains(':') {
            image.to_string()
        } else {
            format!("{image}:latest")
        })
    }
    fn present<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<Option<String>, String>> {
        Box::pin(async move { Ok(self.images.lock().get(image).cloned()) })
    }
    fn pull<'a>(
        &'a self,
        image: &'a str,
        _: &'a [Secret],
    ) -> BoxFuture<'a, Result<Pulled, String>> {
        Box::pin(async move {
            *self.pulls.lock() += 1;
            tokio::time::sleep(self.delay).await;
            match self.pullable.get(image) {
                Some(size) => {
                    let image_ref = format!("sha256:{:0>64}", size);
                    self.images
                        .lock()
                        .insert(image.to_string(), image_ref.clone());
                    Ok(Pulled {
                        image_ref,
                        size: *size,
                    })
                }
                None => Err(format!(
                    "failed to resolve reference {image:?}: {image}: not found"
                )),
            }
        })
    }
}

fn container(image: &str, policy: Option<&str>) -> Container {
    Container {
        name: "c".into(),
        image: Some(image.into()),
        image_pull_policy: policy.map(str::to_string),
        ..Default::default()
    }
}

fn manager(store: &Arc<Store>) -> ImageManager {
    ImageManager::new(Box::new(store.clone()))
}

fn reasons(e: &Ensured) -> Vec<&'static str> {
    e.events.iter().map(|e| e.reason).collect()
}

#[tokio::test(start_paused = true)]
async fn a_pull_reports_pulling_and_pulled_with_the_kubelets_text() {
    let store = Arc::new(Store {
        pullable: HashMap::from([("web:1".to_string(), 1234)]),
        delay: Duration::from_millis(1500),
        ..Default::default()
    });
    let m = manager(&store);
    let e = m.ensure("uid", &container("web:1", None), &[]).await;
    assert_eq!(reasons(&e), ["Pulling", "Pulled"]);
    assert_eq!(e.events[0].message, r#"Pulling image "web:1""#);
    assert_eq!(
        e.events[1].message,
        r#"Successfully pulled image "web:1" in 1.5s (1.5s including waiting). Image size: 1234 bytes."#
    );
    assert_eq!(e.result, Ok(format!("sha256:{:0>64}", 1234)));
    // IfNotPresent (the default for a tag other than latest): present now, no second pull.
    let e = m.ensure("uid", &container("web:1", None), &[]).await;
    assert_eq!(reasons(&e), ["Pulled"]);
    assert_eq!(
        e.events[0].message,
        r#"Container image "web:1" already present on machine"#
    );
    assert_eq!(*store.pulls.lock(), 1);
    // Always pulls again.
    m.ensure("uid", &container("web:1", Some("Always")), &[])
        .await
        .result
        .unwrap();
    assert_eq!(*store.pulls.lock(), 2);
}

#[tokio::test(start_paused = true)]
async fn failed_pulls_back_off_from_10s_doubling_to_300s_per_pod_and_image() {
    let store = Arc::new(Store::default());
    let m = manager(&store);
    let c = container("missing:1", None);
    let e = m.ensure("uid", &c, &[]).await;
    assert_eq!(reasons(&e), ["Pulling", "Failed"]);
    assert_eq!(
        e.events[1].message,
        r#"Failed to pull image "missing:1": failed to resolve reference "missing:1": missing:1: not found"#
    );
    let (err, msg) = e.result.unwrap_err();
    assert_eq!(err.reason(), "ErrImagePull");
    assert_eq!(
        msg,
        r#"failed to resolve reference "missing:1": missing:1: not found"#
    );
    // Within the back-off: no pull, ImagePullBackOff.
    let mut waits = Vec::new();
    for _ in 0..7 {
        let mut waited = Duration::ZERO;
        loop {
            let e = m.ensure("uid", &c, &[]).await;
            match &e.result {
                Err((ImageError::PullBackOff, msg)) => {
                    assert_eq!(msg, r#"Back-off pulling image "missing:1""#);
                    assert_eq!(reasons(&e), ["BackOff"]);
                }
                Err((ImageError::Pull, _)) => break,
                other => panic!("{other:?}"),
            }
            tokio::time::advance(Duration::from_secs(1)).await;
            waited += Duration::from_secs(1);
        }
        waits.push(waited.as_secs());
    }
    assert_eq!(waits, [10, 20, 40, 80, 160, 300, 300]);
    // Another pod's pulls of the same image are not held back.
    let e = m.ensure("other-uid", &c, &[]).await;
    assert_eq!(e.result.unwrap_err().0, ImageError::Pull);
}

#[tokio::test(start_paused = true)]
async fn never_and_invalid_names_fail_without_pulling() {
    let store = Arc::new(Store::default());
    let m = manager(&store);
    let e = m
        .ensure("uid", &container("web:1", Some("Never")), &[])
        .await;
    assert_eq!(reasons(&e), ["ErrImageNeverPull"]);
    assert_eq!(
        e.result.unwrap_err(),
        (
            ImageError::NeverPull,
            r#"Container image "web:1" is not present with pull policy of Never"#.to_string()
        )
    );
    let e = m.ensure("uid", &container("Web", None), &[]).await;
    assert_eq!(reasons(&e), ["InspectFailed"]);
    assert_eq!(
        e.result.unwrap_err(),
        (
            ImageError::InvalidImageName,
            r#"Failed to apply default image tag "Web": invalid reference format"#.to_string()
        )
    );
    assert_eq!(*store.pulls.lock(), 0);
    // Never with the image present runs it.
    store
        .images
        .lock()
        .insert("web:1".into(), "sha256:abc".into());
    let e = m
        .ensure("uid", &container("web:1", Some("Never")), &[])
        .await;
    assert_eq!(e.result, Ok("sha256:abc".to_string()));
}

#[test]
fn unset_policies_take_the_api_default() {
    assert!(should_pull(&container("web", None), true));
    assert!(should_pull(&container("web:latest", None), true));
    assert!(!should_pull(&container("web:1", None), true));
    assert!(should_pull(&container("web:1", None), false));
    assert!(!should_pull(&container("web@sha256:aa", None), true));
}
