//! Handler errors: the cases where the kubelet's prober gets `err != nil`, retries up to three
//! times and then throws the result away (no state change). Each `Display` is the Go error text,
//! since it ends up in the `... probe errored and resulted in <r> state: <err>` event.

use gofmt::quote;

/// Why a probe errored (as opposed to failed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    /// A string port matched no container port name and is not a number
    /// (Go's `strconv.Atoi` error, the kubelet's "last ditch" parse).
    #[error("strconv.Atoi: parsing {}: invalid syntax", quote(.0))]
    PortSyntax(String),
    /// A string port matched no name and is a number too large for Go's `int`.
    #[error("strconv.Atoi: parsing {}: value out of range", quote(.0))]
    PortRange(String),
    /// The resolved port is outside 1..=65535.
    #[error("invalid port number: {0}")]
    InvalidPort(i64),
    /// The probe has no handler at all (`<pod>` is `name_namespace(uid)`).
    #[error("missing probe handler for {pod}:{container}")]
    MissingHandler {
        /// The pod, formatted as the kubelet does (`name_namespace(uid)`).
        pod: String,
        /// The container name.
        container: String,
    },
    /// The exec runner could not run the command (not a non-zero exit, not a timeout).
    #[error("{0}")]
    Exec(String),
    /// Reading an HTTP response body failed (other than hitting the 10 KiB limit).
    #[error("{0}")]
    BodyRead(String),
}
