//! The kubelet's texts around images, byte for byte (pkg/kubelet/images/image_manager.go and
//! containerd's CRI errors as the kubelet shows them), and the values it reports in
//! `status.containerStatuses[]`: for the agent, which owns events and statuses.

use std::time::Duration;

use gofmt::quote;

use crate::error::Error;
use crate::reference::Reference;
use crate::store::ImageRecord;

/// The `Pulling` event: `Pulling image "nginx"`.
pub fn pulling(image: &str) -> String {
    format!("Pulling image {}", quote(image))
}

/// The `Pulled` event after a pull: durations truncated to milliseconds as the kubelet does.
pub fn pulled(image: &str, pull: Duration, including_waiting: Duration, size: u64) -> String {
    let ms = |d: Duration| gofmt::duration(Duration::from_millis(d.as_millis() as u64));
    format!(
        "Successfully pulled image {} in {} ({} including waiting). Image size: {size} bytes.",
        quote(image),
        ms(pull),
        ms(including_waiting)
    )
}

/// The `Pulled` event when the image is there and the policy does not pull.
pub fn already_present(image: &str) -> String {
    format!(
        "Container image {} already present on machine",
        quote(image)
    )
}

/// The `ErrImageNeverPull` message (policy `Never`, image absent).
pub fn never_pull(image: &str) -> String {
    format!(
        "Container image {} is not present with pull policy of Never",
        quote(image)
    )
}

/// The CRI error containerd returns for a failed pull, as the kubelet prints it after
/// `Failed to pull image "…": ` (gRPC code NotFound for a missing image, Unknown otherwise).
pub fn cri_pull_error(reference: &Reference, err: &Error) -> String {
    let code = match err {
        Error::NotFound { .. } => "NotFound",
        _ => "Unknown",
    };
    format!(
        "rpc error: code = {code} desc = failed to pull and unpack image {}: {err}",
        quote(&reference.to_string())
    )
}

/// The `Failed` event: `Failed to pull image "x": <CRI error>`.
pub fn failed(image: &str, reference: &Reference, err: &Error) -> String {
    pull_failed(image, &cri_pull_error(reference, err))
}

/// The `Failed` event around a CRI error already worded ([`cri_pull_error`]).
pub fn pull_failed(image: &str, cri_error: &str) -> String {
    format!("Failed to pull image {}: {cri_error}", quote(image))
}

/// The `BackOff` event and `ImagePullBackOff` message.
pub fn back_off(image: &str) -> String {
    format!("Back-off pulling image {}", quote(image))
}

/// `status.containerStatuses[].imageID` as containerd reports it: the repository with the
/// digest the reference resolved to (`docker.io/library/busybox@sha256:…`).
pub fn image_id(reference: &Reference, image: &ImageRecord) -> String {
    format!("{}@{}", reference.name(), image.repo_digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_as_the_kubelet_writes_them() {
        assert_eq!(pulling("nginx"), "Pulling image \"nginx\"");
        assert_eq!(
            pulled(
                "nginx",
                Duration::from_micros(1_234_567),
                Duration::from_millis(2_500),
                42
            ),
            "Successfully pulled image \"nginx\" in 1.234s (2.5s including waiting). Image size: 42 bytes."
        );
        assert_eq!(
            never_pull("a:1"),
            "Container image \"a:1\" is not present with pull policy of Never"
        );
        assert_eq!(
            already_present("a:1"),
            "Container image \"a:1\" already present on machine"
        );
        let r = Reference::parse_docker_ref("nginx:nope").unwrap();
        let e = Error::NotFound {
            reference: r.to_string(),
        };
        assert_eq!(
            failed("nginx:nope", &r, &e),
            "Failed to pull image \"nginx:nope\": rpc error: code = NotFound desc = failed to pull and unpack image \"docker.io/library/nginx:nope\": failed to resolve reference \"docker.io/library/nginx:nope\": docker.io/library/nginx:nope: not found"
        );
    }
}
