//! (being written) The container runtime trait and its process/namespace implementation.
