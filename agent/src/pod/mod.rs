//! Pods on this node: one worker per pod, written as a pure planner over an explicit state plus
//! a tokio driver.
//!
//! Start at [`model::PodState`] (what the agent knows of a pod), then [`plan::plan`] (the
//! kubelet's `computePodActions`: what to start, kill or wait for), [`status::generate`] (the
//! pod status derived from the state) and [`worker`] (the driver: runtime calls, probe
//! workers, events, status writes). [`config`] turns container specs into runtime
//! configurations (env, mounts, volumes).

pub mod config;
pub mod model;
pub mod plan;
pub mod status;
pub mod worker;

#[cfg(test)]
mod tests;
