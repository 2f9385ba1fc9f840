//! The kubelet's image garbage collection [pkg/kubelet/images/image_gc_manager.go
//! `detectImages`, `GarbageCollect`, `freeSpace`, `imagesInEvictionOrder`; the loop of
//! pkg/kubelet/kubelet.go `StartGarbageCollection`; the flag checks of
//! pkg/kubelet/apis/config/validation `ValidateKubeletConfiguration`].
//!
//! Every [`IMAGE_GC_PERIOD`] [`ImageGc::run`] looks at the image file system: at or over the
//! high threshold (`--image-gc-high-threshold`, 85 %) it removes images no container on the
//! node uses, least recently used first (ties: first detected first), skipping images detected
//! less than `--image-minimum-gc-age` (2 m) ago, until usage would be at the low threshold
//! (`--image-gc-low-threshold`, 80 %). When it cannot free that much it records the kubelet's
//! Warning `FreeDiskSpaceFailed` on the Node; a second failure in a row adds `ImageGCFailed`.
//! A high threshold of 100 turns it off, as in the kubelet.
//!
//! The kubelet keeps "first detected" and "last used" in memory only, and so does this: images
//! present when the agent starts count as detected long ago. "In use" is [`InUse`]: the image
//! of every container of every pod the agent still runs (running or exited, until the pod is
//! removed), filled by the pod workers and, for adopted pods, by the manager before the first
//! collection (which waits for [`InUse::settle`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use parking_lot::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::events::{EventRecorder, EventType, ObjectRef};

/// How often images are collected (the kubelet's `ImageGCPeriod`).
pub const IMAGE_GC_PERIOD: Duration = Duration::from_secs(5 * 60);

/// The kubelet's image GC settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcPolicy {
    /// `--image-gc-high-threshold`: disk usage (percent) at which collection runs.
    pub high_threshold_percent: u32,
    /// `--image-gc-low-threshold`: disk usage (percent) collection frees down to.
    pub low_threshold_percent: u32,
    /// `--image-minimum-gc-age`: an image detected more recently is kept.
    pub min_age: Duration,
}

impl Default for GcPolicy {
    fn default() -> Self {
        GcPolicy {
            high_threshold_percent: 85,
            low_threshold_percent: 80,
            min_age: Duration::from_secs(120),
        }
    }
}

impl GcPolicy {
    /// The kubelet's checks of these flags, with its messages (all that apply, joined as
    /// `utilerrors.NewAggregate` prints them).
    pub fn validate(&self) -> Result<(), String> {
        let (high, low) = (self.high_threshold_percent, self.low_threshold_percent);
        let mut errs = Vec::new();
        if high > 100 {
            errs.push(format!("invalid configuration: imageGCHighThresholdPercent (--image-gc-high-threshold) {high} must be between 0 and 100, inclusive"));
        }
        if low > 100 {
            errs.push(format!("invalid configuration: imageGCLowThresholdPercent (--image-gc-low-threshold) {low} must be between 0 and 100, inclusive"));
        }
        if low >= high {
            errs.push(format!("invalid configuration: imageGCLowThresholdPercent (--image-gc-low-threshold) {low} must be less than imageGCHighThresholdPercent (--image-gc-high-threshold) {high}"));
        }
        match errs.len() {
            0 => Ok(()),
            1 => Err(errs.remove(0)),
            _ => Err(format!("[{}]", errs.join(", "))),
        }
    }

    /// A high threshold of 100 turns collection off (`StartGarbageCollection`).
    pub fn disabled(&self) -> bool {
        self.high_threshold_percent >= 100
    }
}

/// One image on the node, as collection sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredImage {
    /// The image ID (`sha256:…` of its config): what is removed.
    pub id: String,
    /// Other digests containers may name it by (its repo digests, from `imageID`).
    pub aliases: Vec<String>,
    /// Its size as the runtime reports it.
    pub size: u64,
}

/// The image file system, as collection needs it.
pub trait ImageFs: Send + Sync {
    /// Capacity and available bytes of the file system holding the images.
    fn usage(&self) -> BoxFuture<'_, Result<(u64, u64), String>>;
    /// The images stored.
    fn images(&self) -> BoxFuture<'_, Result<Vec<StoredImage>, String>>;
    /// Removes an image by ID (and the content only it used).
    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), String>>;
}

/// The images the node's containers use, per pod UID: a container's image is in use from its
/// start until its pod's containers are removed (the kubelet counts exited containers too).
/// Bounded by the pods the node runs.
#[derive(Debug)]
pub struct InUse {
    pods: Mutex<HashMap<String, BTreeSet<String>>>,
    settled: tokio::sync::watch::Sender<bool>,
}

impl Default for InUse {
    fn default() -> Self {
        InUse {
            pods: Mutex::new(HashMap::new()),
            settled: tokio::sync::watch::Sender::new(false),
        }
    }
}

impl InUse {
    /// Pod `uid` has a container of image `digest` (an image ID or a repo digest).
    pub fn add(&self, uid: &str, digest: &str) {
        self.pods
            .lock()
            .entry(uid.to_string())
            .or_default()
            .insert(digest.to_string());
    }

    /// Pod `uid`'s containers are gone.
    pub fn forget_pod(&self, uid: &str) {
        self.pods.lock().remove(uid);
    }

    /// The digests in use, per pod UID.
    pub fn by_pod(&self) -> HashMap<String, BTreeSet<String>> {
        self.pods.lock().clone()
    }

    /// Every digest in use.
    pub fn all(&self) -> BTreeSet<String> {
        self.pods.lock().values().flatten().cloned().collect()
    }

    /// The pods a previous agent run left have been adopted (their images are in the set):
    /// collection may start.
    pub fn settle(&self) {
        self.settled.send_replace(true);
    }

    async fn settled(&self) {
        let mut rx = self.settled.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }
}

#[derive(Debug, Clone, Copy)]
struct Record {
    /// `None`: present when the agent started (the kubelet's zero time: long ago).
    first_detected: Option<Instant>,
    /// `None`: never seen in use.
    last_used: Option<Instant>,
    size: u64,
}

/// Why a collection failed: the error text, and whether it was already said with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcError(pub String);

impl std::fmt::Display for GcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The image garbage collector of a node.
pub struct ImageGc {
    policy: GcPolicy,
    fs: Box<dyn ImageFs>,
    in_use: Arc<InUse>,
    events: EventRecorder,
    node: ObjectRef,
    records: Mutex<HashMap<String, Record>>,
    initialized: Mutex<bool>,
}

impl std::fmt::Debug for ImageGc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageGc")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl ImageGc {
    /// A collector over `fs`, keeping what `in_use` names, recording events on Node `node`.
    pub fn new(
        policy: GcPolicy,
        fs: Box<dyn ImageFs>,
        in_use: Arc<InUse>,
        events: EventRecorder,
        node: &str,
    ) -> Self {
        ImageGc {
            policy,
            fs,
            in_use,
            events,
            node: ObjectRef::node(node),
            records: Mutex::new(HashMap::new()),
            initialized: Mutex::new(false),
        }
    }

    /// `detectImages`: new images are detected at `detect_time` (`None`: long ago), images in
    /// use were last used now, records of images gone are dropped. Returns the IDs in use.
    async fn detect(&self, detect_time: Option<Instant>) -> Result<BTreeSet<String>, String> {
        let images = self.fs.images().await?;
        let used = self.in_use.all();
        let now = Instant::now();
        let mut in_use = BTreeSet::new();
        let mut records = self.records.lock();
        let mut current = BTreeSet::new();
        for i in &images {
            current.insert(i.id.clone());
            let r = records.entry(i.id.clone()).or_insert(Record {
                first_detected: detect_time,
                last_used: None,
                size: i.size,
            });
            if used.contains(&i.id) || i.aliases.iter().any(|a| used.contains(a)) {
                in_use.insert(i.id.clone());
                r.last_used = Some(now);
            }
            r.size = i.size;
        }
        records.retain(|id, _| current.contains(id));
        Ok(in_use)
    }

    /// The periodic detection of the kubelet's image manager (`Start`): the first one dates
    /// what it finds "long ago".
    async fn detect_periodic(&self) {
        let initialized = *self.initialized.lock();
        let ts = initialized.then(Instant::now);
        match self.detect(ts).await {
            Ok(_) => *self.initialized.lock() = true,
            Err(e) => tracing::warn!(error = %e, "failed to monitor images"),
        }
    }

    /// `GarbageCollect`: frees space down to the low threshold when usage is at or over the
    /// high one; `FreeDiskSpaceFailed` (or `InvalidDiskCapacity`) recorded here.
    pub async fn garbage_collect(&self) -> Result<(), GcError> {
        let free_time = Instant::now();
        let (capacity, available) = self.fs.usage().await.map_err(GcError)?;
        let available = available.min(capacity);
        if capacity == 0 {
            let msg = "invalid capacity 0 on image filesystem".to_string();
            self.warn("InvalidDiskCapacity", msg.clone());
            return Err(GcError(msg));
        }
        let usage = 100 - available * 100 / capacity;
        if usage < u64::from(self.policy.high_threshold_percent) {
            return Ok(());
        }
        let low = u64::from(self.policy.low_threshold_percent.min(100));
        let to_free = (capacity * (100 - low) / 100).saturating_sub(available);
        tracing::info!(
            usage,
            high_threshold = self.policy.high_threshold_percent,
            amount_to_free = to_free,
            low_threshold = low,
            "disk usage on image filesystem is over the high threshold, trying to free bytes down to the low threshold"
        );
        let freed = self.free_space(to_free, free_time).await.map_err(GcError)?;
        if freed < to_free {
            let msg = format!(
                "Failed to garbage collect required amount of images. Attempted to free {to_free} bytes, but only found {freed} bytes eligible to free."
            );
            self.warn("FreeDiskSpaceFailed", msg.clone());
            return Err(GcError(msg));
        }
        Ok(())
    }

    /// `imagesInEvictionOrder` + `freeSpace`.
    async fn free_space(&self, to_free: u64, free_time: Instant) -> Result<u64, String> {
        let in_use = self.detect(Some(free_time)).await?;
        let mut order: Vec<(String, Record)> = self
            .records
            .lock()
            .iter()
            .filter(|(id, _)| !in_use.contains(*id))
            .map(|(id, r)| (id.clone(), *r))
            .collect();
        // By last used, ties by first detected (None sorts first: long ago / never).
        order.sort_by(|a, b| {
            (a.1.last_used, a.1.first_detected, &a.0).cmp(&(
                b.1.last_used,
                b.1.first_detected,
                &b.0,
            ))
        });
        let mut freed = 0u64;
        let mut errors = Vec::new();
        for (id, r) in order {
            if r.last_used.is_some_and(|u| u >= free_time) {
                continue;
            }
            if let Some(first) = r.first_detected
                && free_time.saturating_duration_since(first) < self.policy.min_age
            {
                continue;
            }
            tracing::info!(image = %id, size = r.size, "removing image to free bytes");
            if let Err(e) = self.fs.remove(&id).await {
                errors.push(e);
                continue;
            }
            self.records.lock().remove(&id);
            freed += r.size;
            if freed >= to_free {
                break;
            }
        }
        if !errors.is_empty() {
            return Err(format!(
                "wanted to free {to_free} bytes, but freed {freed} bytes space with errors in image deletion: {}",
                errors.join("\n")
            ));
        }
        Ok(freed)
    }

    fn warn(&self, reason: &str, message: String) {
        self.events
            .record(&self.node, EventType::Warning, reason, message);
    }

    /// The collection loop: once the node's adopted pods are known, every
    /// [`IMAGE_GC_PERIOD`] (the first at once), until `stop`. A failure is logged; a second
    /// one in a row is also the Warning `ImageGCFailed` on the Node.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        if self.policy.disabled() {
            tracing::info!("image garbage collection is off (--image-gc-high-threshold 100)");
            return;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = self.in_use.settled() => {}
        }
        let mut tick = tokio::time::interval(IMAGE_GC_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut prev_failed = false;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            self.detect_periodic().await;
            match self.garbage_collect().await {
                Ok(()) => {
                    if prev_failed {
                        tracing::info!("image garbage collection succeeded");
                    }
                    prev_failed = false;
                }
                Err(e) => {
                    if prev_failed {
                        tracing::error!(error = %e, "image garbage collection failed multiple times in a row");
                        self.warn("ImageGCFailed", e.0.clone());
                    } else {
                        tracing::error!(error = %e, "image garbage collection failed once");
                    }
                    prev_failed = true;
                }
            }
        }
    }
}

/// The [`ImageFs`] of a node: the `image` crate's store, read off the async threads.
#[derive(Debug, Clone)]
pub struct StoreFs(pub image::Store);

impl StoreFs {
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&image::Store) -> image::error::Result<T> + Send + 'static,
    ) -> Result<T, String> {
        let store = self.0.clone();
        tokio::task::spawn_blocking(move || f(&store).map_err(|e| e.to_string()))
            .await
            .map_err(|e| format!("image store: {e}"))?
    }
}

impl ImageFs for StoreFs {
    fn usage(&self) -> BoxFuture<'_, Result<(u64, u64), String>> {
        Box::pin(self.blocking(|s| s.fs_usage()))
    }

    fn images(&self) -> BoxFuture<'_, Result<Vec<StoredImage>, String>> {
        Box::pin(async move {
            let list = self.blocking(|s| s.list()).await?;
            let mut by_id: HashMap<String, StoredImage> = HashMap::new();
            for (_, r) in list {
                let e = by_id
                    .entry(r.config.to_string())
                    .or_insert_with(|| StoredImage {
                        id: r.config.to_string(),
                        aliases: Vec::new(),
                        size: r.size,
                    });
                let d = r.repo_digest.to_string();
                if !e.aliases.contains(&d) {
                    e.aliases.push(d);
                }
            }
            Ok(by_id.into_values().collect())
        })
    }

    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), String>> {
        let id = id.to_string();
        Box::pin(self.blocking(move |s| s.remove(&id, &BTreeSet::new()).map(|_| ())))
    }
}

#[cfg(test)]
mod tests;
