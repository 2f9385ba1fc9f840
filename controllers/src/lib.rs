//! Controllers that run inside the server (garbage collector, namespace lifecycle; later replicaset, deployment, endpoints, scheduler).
