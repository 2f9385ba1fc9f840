//! The Kubernetes object model as paddock serves it: which resources exist ([`registry`]),
//! how manifests are read ([`manifest`]), how an object is decoded, defaulted and validated
//! ([`object`], [`defaults`], [`validation`]), the pod-create admission mutations
//! ([`admission`]), selectors ([`selector`]), quantities and pod requests ([`quantity`]),
//! container restarts ([`pod`]), CronJob schedules ([`cron`]), how a recorder writes events ([`events`]), the four patch
//! kinds ([`patch`]) and Kubernetes `Status` errors ([`status`]).
//! Shared rules live here once: object time stamps ([`time`]), `UpdatePodCondition`
//! ([`pod_condition`]) and the PodDisruptionBudget condition rules ([`pdb`]). [`cluster`] is the port through which the controllers reach the
//! cluster's objects (implemented by the API server's registry and by a kube-rs client).
//! Start at [`object`]: it is the pipeline the API server runs on every write.

// `ApiError` (a whole Kubernetes `Status`) is the error of most functions here; errors are
// the rare path, and boxing it would make every caller and constructor clumsier.
#![allow(clippy::result_large_err)]

pub mod admission;
pub mod certificates;
pub mod cluster;
pub mod convert;
pub mod cron;
pub mod defaults;
pub mod events;
pub mod manifest;
pub mod object;
pub mod patch;
pub mod pdb;
pub mod pod;
pub mod pod_condition;
pub mod protobuf;
pub mod quantity;
pub mod registry;
pub mod selector;
pub mod status;
pub mod time;
pub mod validation;
pub mod yaml;

/// The IngressClass every paddock cluster has (created at start unless it exists, annotated
/// as the default class, so an Ingress naming no class gets it).
pub const PADDOCK_INGRESS_CLASS: &str = "paddock";
/// The `spec.controller` of [`PADDOCK_INGRESS_CLASS`]: paddock's ingress listener serves the
/// Ingresses of every class with this controller.
pub const PADDOCK_INGRESS_CONTROLLER: &str = "paddock.dev/ingress-controller";
