//! End-to-end tests: a real `paddock server` process driven by real kubectl, curl, the Python
//! `kubernetes` client and kube-rs. One test binary; `support` starts and cleans up servers.

#![allow(unreachable_pub)] // a test binary: pub marks what modules share

mod fixtures;
mod support;

mod agent;
mod attach;
mod bad_input;
mod certificates;
mod clients;
mod dns;
mod drain;
mod durability;
mod image_cli;
mod images;
mod ingress;
mod ingress_api;
mod jobs;
mod join;
mod kubectl_apply;
mod kubectl_get;
mod kubectl_misc;
mod logs;
mod node_authz;
mod node_failure;
mod node_network;
mod node_proxy;
mod openapi;
mod pod_network;
mod pod_verdicts;
mod port_forward;
mod private_files;
mod probe_timing;
mod rbac;
mod replication;
mod resource_metrics;
mod resource_proxy;
mod runtime_class;
mod service_env;
mod serviceaccounts;
mod statefulsets;
mod storage;
mod termination_message;
mod transport;
mod up;
mod users;
mod volume_paths;
mod walkthrough;
mod zero_downtime;
