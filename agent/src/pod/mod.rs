//! Pods on this node: one worker per pod, written as a pure planner over an explicit state plus
//! a tokio driver.
//!
//! Start at [`model::PodState`] (what the agent knows of a pod), then [`plan::plan`] (the
//! kubelet's `computePodActions`: what to start, kill or wait for), [`status::generate`] (the
//! pod status derived from the state) and [`worker`] (the driver: runtime calls, probe
//! workers, events, status writes); [`admit`] the kubelet's pod-level verdicts (AppArmor
//! admission, the active deadline). [`config`] turns container specs into runtime
//! configurations (env, mounts, volumes). The worker's ports and what it publishes:
//! [`status_writer`] (status writes and pod removal through the API) and [`directory`] (each
//! pod's container instances and probe histories, for the logs/exec server).

pub mod admit;
pub mod config;
pub mod directory;
pub mod dns;
pub mod image_run;
pub mod model;
pub mod plan;
pub mod port_error;
pub mod status;
pub mod status_writer;
pub mod worker;

#[cfg(test)]
mod tests;
