//! Pull throughput: a ~100 MB single-layer image (incompressible content, gzip) from a local
//! `docker-registry`, pulled by this crate (transfer, verify, unpack) against `skopeo copy` of
//! the same image to an OCI directory (transfer and verify, no unpack). Prints times and the
//! ratio; no assertion (machines differ). Run with `bench/image.sh`.

// Wall-clock timing of whole pulls: a benchmark, not logic.
#![allow(clippy::disallowed_types)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::Command;

use anyhow::Result;
use image::pull::{PullOptions, Puller};
use support::*;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() -> Result<()> {
    let size: usize = std::env::var("IMAGE_BENCH_MB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100)
        << 20;
    let rounds: usize = std::env::var("IMAGE_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let reg = Registry::start(None)?;
    let work = tempfile::tempdir()?;
    // xorshift: incompressible, reproducible.
    let mut data = vec![0u8; size];
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = x.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
    let layer = tar_layer(&[Entry::File("big", data, 0o644)])?;
    let layout = work.path().join("layout");
    write_layout(
        &layout,
        "big",
        None,
        &[TestImage {
            arch: "amd64",
            layers: vec![layer],
            entrypoint: vec!["/x"],
            cmd: vec![],
        }],
    )?;
    reg.push(&layout, "big", "bench/big")?;
    let r = format!("{}/bench/big:big", reg.host());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for i in 0..rounds {
        let dir = work.path().join(format!("store{i}"));
        let t = std::time::Instant::now();
        let pulled = rt.block_on(async {
            Puller::new(store_in(&dir)?)?
                .pull(&r, &PullOptions::default())
                .await
                .map_err(anyhow::Error::from)
        })?;
        ours.push(t.elapsed().as_secs_f64());
        assert!(pulled.downloaded as usize >= size);
        std::fs::remove_dir_all(&dir)?;

        let dest = work.path().join(format!("skopeo{i}"));
        let t = std::time::Instant::now();
        let out = Command::new(need("skopeo", "skopeo")?)
            .args([
                "--insecure-policy",
                "copy",
                "--quiet",
                "--src-tls-verify=false",
            ])
            .arg(format!("docker://{r}"))
            .arg(format!("oci:{}:big", dest.display()))
            .output()?;
        theirs.push(t.elapsed().as_secs_f64());
        anyhow::ensure!(
            out.status.success(),
            "skopeo: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::remove_dir_all(&dest)?;
    }
    let (o, s) = (median(ours), median(theirs));
    let mb = size as f64 / 1e6;
    println!("image pull of {mb:.0} MB (median of {rounds}):");
    println!(
        "  paddock (transfer + verify + unpack): {o:.2} s  {:.0} MB/s",
        mb / o
    );
    println!(
        "  skopeo copy to oci: (transfer + verify): {s:.2} s  {:.0} MB/s",
        mb / s
    );
    println!("  ratio skopeo/paddock: {:.2} (target >= 0.9)", s / o);
    Ok(())
}
