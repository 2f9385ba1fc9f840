//! The garbage collector's object graph (upstream `graph.go` + `graph_builder.go`): every
//! object of every monitored resource by uid, with its owner references, and the reverse index
//! owner uid → dependent uids. Owners that do not exist (yet, or any more) are simply absent
//! from `nodes` while their dependents still point at them, upstream's "virtual" nodes.
//!
//! [`Graph::upsert`] and [`Graph::delete`] apply one observed change and return the uids the
//! collector must look at again, the decisions upstream's `GraphBuilder.processGraphChanges`
//! makes.

use std::collections::{HashMap, HashSet};

use api::registry::ResourceInfo;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{FOREGROUND, ORPHAN, has_finalizer};

/// One owner reference of a dependent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owner {
    pub(crate) uid: String,
    /// `blockOwnerDeletion: true`.
    pub(crate) block: bool,
}

/// What the graph knows about one object.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) info: &'static ResourceInfo,
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) owners: Vec<Owner>,
    /// Being deleted in the foreground: `deletionTimestamp` and the `foregroundDeletion`
    /// finalizer.
    pub(crate) deleting_dependents: bool,
    /// Being deleted with its dependents orphaned: `deletionTimestamp` and `orphan`.
    pub(crate) orphaning: bool,
}

impl Node {
    fn from(info: &'static ResourceInfo, m: &ObjectMeta) -> Node {
        let owners = m
            .owner_references
            .iter()
            .flatten()
            .filter(|r| !r.uid.is_empty())
            .map(|r| Owner {
                uid: r.uid.clone(),
                block: r.block_owner_deletion == Some(true),
            })
            .collect();
        let deleting = m.deletion_timestamp.is_some();
        Node {
            info,
            namespace: m.namespace.clone().unwrap_or_default(),
            name: m.name.clone().unwrap_or_default(),
            owners,
            deleting_dependents: deleting && has_finalizer(m, FOREGROUND),
            orphaning: deleting && has_finalizer(m, ORPHAN),
        }
    }
}

/// All monitored objects and who owns whom.
#[derive(Debug, Default)]
pub(crate) struct Graph {
    nodes: HashMap<String, Node>,
    /// Owner uid → uids of the objects whose ownerReferences name it.
    dependents: HashMap<String, HashSet<String>>,
}

impl Graph {
    /// The node of `uid`, if the object is known.
    pub(crate) fn node(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    /// The uids and nodes of `owner`'s known dependents.
    pub(crate) fn dependents(&self, owner: &str) -> Vec<(String, Node)> {
        self.dependents
            .get(owner)
            .into_iter()
            .flatten()
            .filter_map(|uid| self.nodes.get(uid).map(|n| (uid.clone(), n.clone())))
            .collect()
    }

    /// Dependents whose reference to `owner` has `blockOwnerDeletion: true`.
    pub(crate) fn blocking_dependents(&self, owner: &str) -> Vec<(String, Node)> {
        self.dependents(owner)
            .into_iter()
            .filter(|(_, n)| n.owners.iter().any(|o| o.uid == owner && o.block))
            .collect()
    }

    /// Records the current state of an object (its metadata `m`); returns the uids to
    /// (re)process.
    pub(crate) fn upsert(&mut self, info: &'static ResourceInfo, m: &ObjectMeta) -> Vec<String> {
        let uid = m.uid.as_deref().unwrap_or("");
        if uid.is_empty() {
            return Vec::new();
        }
        let new = Node::from(info, m);
        let old = self.nodes.insert(uid.to_string(), new.clone());
        let old_owners = old.as_ref().map(|o| o.owners.clone()).unwrap_or_default();
        for o in &old_owners {
            if !new.owners.iter().any(|n| n.uid == o.uid) {
                self.unlink(&o.uid, uid);
            }
        }
        for o in &new.owners {
            self.dependents
                .entry(o.uid.clone())
                .or_default()
                .insert(uid.to_string());
        }

        let mut work = Vec::new();
        let owners_changed = old.is_none() || old_owners != new.owners;
        // A new or re-parented dependent: check whether its owners still exist.
        if !new.owners.is_empty() && owners_changed {
            work.push(uid.to_string());
        }
        // Owners this object stopped blocking may be able to finish foreground deletion.
        if owners_changed {
            for o in &old_owners {
                let still_blocks = new.owners.iter().any(|n| n.uid == o.uid && n.block);
                if o.block && !still_blocks && self.deleting_dependents(&o.uid) {
                    work.push(o.uid.clone());
                }
            }
        }
        if new.orphaning {
            work.push(uid.to_string());
        }
        if new.deleting_dependents {
            // Upstream `startsWaitingForDependentsDeleted`: every dependent is looked at once.
            if !old.as_ref().is_some_and(|o| o.deleting_dependents) {
                work.extend(self.dependents.get(uid).into_iter().flatten().cloned());
            }
            work.push(uid.to_string());
        }
        work
    }

    /// Forgets a deleted object; returns the uids to (re)process: its dependents (their owner
    /// is gone) and owners waiting in foreground deletion for it.
    pub(crate) fn delete(&mut self, m: &ObjectMeta) -> Vec<String> {
        let uid = m.uid.as_deref().unwrap_or("");
        let Some(node) = self.nodes.remove(uid) else {
            return Vec::new();
        };
        let mut work = Vec::new();
        for o in &node.owners {
            self.unlink(&o.uid, uid);
            if self.deleting_dependents(&o.uid) {
                work.push(o.uid.clone());
            }
        }
        work.extend(self.dependents.get(uid).into_iter().flatten().cloned());
        work
    }

    fn deleting_dependents(&self, uid: &str) -> bool {
        self.nodes.get(uid).is_some_and(|n| n.deleting_dependents)
    }

    fn unlink(&mut self, owner: &str, dependent: &str) {
        if let Some(set) = self.dependents.get_mut(owner) {
            set.remove(dependent);
            if set.is_empty() {
                self.dependents.remove(owner);
            }
        }
    }

    /// Number of known objects.
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }
}
