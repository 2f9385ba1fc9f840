//! End-to-end tests: a real `paddock server` process driven by real kubectl, curl, the Python
//! `kubernetes` client and kube-rs. One test binary; `support` starts and cleans up servers.

#![allow(unreachable_pub)] // a test binary: pub marks what modules share

mod fixtures;
mod support;

mod agent;
mod bad_input;
mod clients;
mod durability;
mod kubectl_apply;
mod kubectl_get;
mod kubectl_misc;
mod service_env;
mod termination_message;
mod transport;
mod up;
mod walkthrough;
mod zero_downtime;
