//! Rules about a pod's containers that the API, the scheduler and the node agent share.
//!
//! - [`restart`]: whether an exited container is restarted (the pod's and the container's
//!   `restartPolicy`, the container's `restartPolicyRules`).

pub mod restart;
