//! Test-only helpers: misbehaving servers and (later) a cluster harness.
