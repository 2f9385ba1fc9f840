//! [`PortError`]: how the agent's ports to the API ([`super::status_writer::StatusWriter`],
//! [`super::config::Objects`]) fail, so callers branch on what happened (the object is gone, a
//! precondition or concurrent write refused it, or anything else) instead of reading text.
//! `From<kube::Error>` is the one mapping from the API client's errors: 404 is
//! [`PortError::NotFound`], 409 [`PortError::Conflict`], every other answer and every
//! transport failure [`PortError::Other`]. Each variant keeps the client's message, which is
//! what logs and container-config errors print.

/// A failed call through one of the agent's API ports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// The object does not exist (HTTP 404).
    #[error("{message}")]
    NotFound {
        /// The client's description.
        message: String,
    },
    /// A precondition (UID, resourceVersion) or a concurrent write refused the call (HTTP 409).
    #[error("{message}")]
    Conflict {
        /// The client's description.
        message: String,
    },
    /// Any other refusal, or the API could not be reached.
    #[error("{message}")]
    Other {
        /// The client's description.
        message: String,
    },
}

impl PortError {
    /// An error that is neither not-found nor a conflict.
    pub fn other(message: impl Into<String>) -> Self {
        Self::Other {
            message: message.into(),
        }
    }
}

impl From<kube::Error> for PortError {
    fn from(e: kube::Error) -> Self {
        let message = e.to_string();
        match &e {
            kube::Error::Api(s) if s.code == 404 => Self::NotFound { message },
            kube::Error::Api(s) if s.code == 409 => Self::Conflict { message },
            _ => Self::Other { message },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16, reason: &str) -> kube::Error {
        kube::Error::Api(
            kube::core::Status {
                code,
                message: format!("refused with {code}"),
                reason: reason.into(),
                ..Default::default()
            }
            .boxed(),
        )
    }

    #[test]
    fn kube_errors_map_by_status_code() {
        let e = api(404, "NotFound");
        let text = e.to_string();
        assert_eq!(PortError::from(e), PortError::NotFound { message: text });
        let e = api(409, "Conflict");
        let text = e.to_string();
        assert_eq!(PortError::from(e), PortError::Conflict { message: text });
        // The code decides, not the reason or the text.
        for (code, reason) in [
            (500, "NotFound"),
            (403, "Conflict"),
            (410, "Expired"),
            (0, ""),
        ] {
            let e = api(code, reason);
            let text = e.to_string();
            assert_eq!(
                PortError::from(e),
                PortError::Other { message: text },
                "{code}"
            );
        }
        let e = kube::Error::LinesCodecMaxLineLengthExceeded;
        let text = e.to_string();
        assert_eq!(PortError::from(e), PortError::Other { message: text });
    }

    #[test]
    fn display_is_the_clients_message() {
        let e = api(404, "NotFound");
        let text = e.to_string();
        assert_eq!(PortError::from(e).to_string(), text);
        assert_eq!(
            PortError::other("connection refused").to_string(),
            "connection refused"
        );
    }
}
