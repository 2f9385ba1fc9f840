use std::collections::BTreeMap;

use tokio::sync::mpsc;

use super::*;
use crate::events::Recorded;

/// A file system of `capacity` bytes holding `used` bytes besides the images; removing an image
/// frees its size.
struct Fs {
    capacity: u64,
    other: u64,
    images: Mutex<BTreeMap<String, u64>>,
    removed: Mutex<Vec<String>>,
}

impl Fs {
    fn new(capacity: u64, other: u64, images: &[(&str, u64)]) -> Arc<Fs> {
        Arc::new(Fs {
            capacity,
            other,
            images: Mutex::new(images.iter().map(|(i, s)| (i.to_string(), *s)).collect()),
            removed: Mutex::new(Vec::new()),
        })
    }
    fn add(&self, id: &str, size: u64) {
        self.images.lock().insert(id.to_string(), size);
    }
    fn removed(&self) -> Vec<String> {
        self.removed.lock().clone()
    }
}

impl ImageFs for Arc<Fs> {
    fn usage(&self) -> BoxFuture<'_, Result<(u64, u64), String>> {
        let used: u64 = self.other + self.images.lock().values().sum::<u64>();
        Box::pin(async move { Ok((self.capacity, self.capacity.saturating_sub(used))) })
    }
    fn images(&self) -> BoxFuture<'_, Result<Vec<StoredImage>, String>> {
        let list = self
            .images
            .lock()
            .iter()
            .map(|(id, size)| StoredImage {
                id: id.clone(),
                aliases: vec![format!("repo-{id}")],
                size: *size,
            })
            .collect();
        Box::pin(async move { Ok(list) })
    }
    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), String>> {
        self.images.lock().remove(id);
        self.removed.lock().push(id.to_string());
        Box::pin(async { Ok(()) })
    }
}

fn gc(fs: &Arc<Fs>, in_use: &Arc<InUse>) -> (Arc<ImageGc>, mpsc::UnboundedReceiver<Recorded>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let gc = ImageGc::new(
        GcPolicy::default(),
        Box::new(fs.clone()),
        in_use.clone(),
        EventRecorder::to_channel(tx),
        "node-1",
    );
    (Arc::new(gc), rx)
}

fn events(rx: &mut mpsc::UnboundedReceiver<Recorded>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        assert_eq!(e.object.kind, "Node");
        assert_eq!(e.kind, EventType::Warning);
        out.push((e.reason, e.message));
    }
    out
}

#[test]
fn flags_are_checked_with_the_kubelets_messages() {
    assert_eq!(GcPolicy::default().validate(), Ok(()));
    let p = |high, low| GcPolicy {
        high_threshold_percent: high,
        low_threshold_percent: low,
        ..GcPolicy::default()
    };
    assert_eq!(
        p(80, 80).validate(),
        Err("invalid configuration: imageGCLowThresholdPercent (--image-gc-low-threshold) 80 must be less than imageGCHighThresholdPercent (--image-gc-high-threshold) 80".into())
    );
    assert_eq!(
        p(101, 80).validate(),
        Err("invalid configuration: imageGCHighThresholdPercent (--image-gc-high-threshold) 101 must be between 0 and 100, inclusive".into())
    );
    let both = p(50, 120).validate().unwrap_err();
    assert!(both.starts_with("[invalid configuration: imageGCLowThresholdPercent (--image-gc-low-threshold) 120 must be between 0 and 100, inclusive, "), "{both}");
    assert!(p(100, 80).disabled());
    assert!(!GcPolicy::default().disabled());
}

#[tokio::test(start_paused = true)]
async fn below_the_high_threshold_nothing_is_removed() {
    // 84 % used.
    let fs = Fs::new(1000, 640, &[("a", 100), ("b", 100)]);
    let in_use = Arc::new(InUse::default());
    let (gc, mut rx) = gc(&fs, &in_use);
    gc.detect_periodic().await;
    assert_eq!(gc.garbage_collect().await, Ok(()));
    assert!(fs.removed().is_empty());
    assert!(events(&mut rx).is_empty());
}

#[tokio::test(start_paused = true)]
async fn least_recently_used_unused_images_go_first_down_to_the_low_threshold() {
    // 90 % used: 100 bytes to free to reach 80 %.
    let fs = Fs::new(
        1000,
        500,
        &[("old", 60), ("older", 60), ("running", 200), ("never", 80)],
    );
    let in_use = Arc::new(InUse::default());
    let (gc, mut rx) = gc(&fs, &in_use);
    gc.detect_periodic().await; // all detected "long ago"
    // "older" was used first, then "old"; "running" is used now (by its repo digest, as an
    // adopted container names it).
    in_use.add("pod-1", "older");
    gc.detect(Some(Instant::now())).await.expect("detect");
    in_use.forget_pod("pod-1");
    tokio::time::advance(Duration::from_secs(10)).await;
    in_use.add("pod-2", "old");
    gc.detect(Some(Instant::now())).await.expect("detect");
    in_use.forget_pod("pod-2");
    in_use.add("pod-3", "repo-running");
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(gc.garbage_collect().await, Ok(()));
    // Never used first, then the least recently used, until 100 bytes: 80 + 60.
    assert_eq!(fs.removed(), vec!["never".to_string(), "older".to_string()]);
    assert!(events(&mut rx).is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_image_in_use_is_never_removed_and_a_shortfall_is_free_disk_space_failed() {
    let fs = Fs::new(1000, 300, &[("running", 500), ("exited", 100)]);
    let in_use = Arc::new(InUse::default());
    // A pod whose container exited still holds its image until the pod is removed.
    in_use.add("pod-1", "running");
    in_use.add("pod-2", "exited");
    let (gc, mut rx) = gc(&fs, &in_use);
    gc.detect_periodic().await;
    let err = gc.garbage_collect().await.unwrap_err();
    let want = "Failed to garbage collect required amount of images. Attempted to free 100 bytes, but only found 0 bytes eligible to free.";
    assert_eq!(err.0, want);
    assert!(fs.removed().is_empty());
    assert_eq!(
        events(&mut rx),
        vec![("FreeDiskSpaceFailed".to_string(), want.to_string())]
    );
    // Pod 2 removed: its image may go (used until then: not in the same instant).
    in_use.forget_pod("pod-2");
    assert!(
        gc.garbage_collect().await.is_err(),
        "used at this very time"
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(gc.garbage_collect().await, Ok(()));
    assert_eq!(fs.removed(), vec!["exited".to_string()]);
}

#[tokio::test(start_paused = true)]
async fn an_image_newer_than_the_minimum_age_is_kept() {
    let fs = Fs::new(1000, 800, &[]);
    let in_use = Arc::new(InUse::default());
    let (gc, mut rx) = gc(&fs, &in_use);
    gc.detect_periodic().await; // initialized: later images are dated
    fs.add("fresh", 100); // 90 %
    gc.detect_periodic().await;
    tokio::time::advance(Duration::from_secs(119)).await;
    assert!(gc.garbage_collect().await.is_err(), "1m59s old: kept");
    assert!(fs.removed().is_empty());
    assert_eq!(events(&mut rx)[0].0, "FreeDiskSpaceFailed");
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(gc.garbage_collect().await, Ok(()));
    assert_eq!(fs.removed(), vec!["fresh".to_string()]);
}

#[tokio::test(start_paused = true)]
async fn the_loop_waits_for_adoption_runs_every_five_minutes_and_repeats_failures_as_image_gc_failed()
 {
    let fs = Fs::new(1000, 950, &[]);
    let in_use = Arc::new(InUse::default());
    let (gc, mut rx) = gc(&fs, &in_use);
    let stop = CancellationToken::new();
    let task = tokio::spawn(gc.clone().run(stop.clone()));
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert!(
        events(&mut rx).is_empty(),
        "nothing before the pods are settled"
    );
    in_use.settle();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let first = events(&mut rx);
    assert_eq!(
        first.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
        ["FreeDiskSpaceFailed"],
        "the first run at once; one failure is no ImageGCFailed"
    );
    tokio::time::sleep(IMAGE_GC_PERIOD - Duration::from_secs(2)).await;
    assert!(events(&mut rx).is_empty(), "not before five minutes");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let second = events(&mut rx);
    assert_eq!(
        second.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
        ["FreeDiskSpaceFailed", "ImageGCFailed"]
    );
    assert_eq!(second[0].1, second[1].1);
    stop.cancel();
    task.await.expect("loop");
}

#[tokio::test(start_paused = true)]
async fn a_high_threshold_of_100_turns_collection_off() {
    let fs = Fs::new(1000, 1000, &[("a", 0)]);
    let in_use = Arc::new(InUse::default());
    in_use.settle();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let gc = Arc::new(ImageGc::new(
        GcPolicy {
            high_threshold_percent: 100,
            low_threshold_percent: 80,
            ..GcPolicy::default()
        },
        Box::new(fs.clone()),
        in_use,
        EventRecorder::to_channel(tx),
        "node-1",
    ));
    // Returns at once instead of looping.
    gc.run(CancellationToken::new()).await;
    assert!(events(&mut rx).is_empty());
}
