//! paddock binary
fn main() {}
