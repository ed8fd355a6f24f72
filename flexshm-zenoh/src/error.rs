//! The bridge's error type.

use std::fmt;

use crate::wire::WireError;

/// Everything that stops a bridge loop or a bridge call.
///
/// Messages that fail validation are not errors of the loop: they are dropped, logged and
/// counted (see [`crate::mirror::MirrorStats`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum BridgeError {
    /// A message could not be encoded, or a schema is invalid.
    Wire(WireError),
    /// The local segment cannot be used.
    Segment {
        /// The segment name.
        name: String,
        /// The shared-memory layer's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The local mirror segment exists with another schema or mode than the remote one.
    Mismatch {
        /// The segment name.
        name: String,
        /// What differs.
        detail: String,
    },
    /// A Zenoh call failed.
    Zenoh(zenoh::Error),
    /// Invalid bridge or Zenoh configuration.
    Config(String),
    /// The segment no longer exists and the publisher should stop instead of waiting
    /// for it (publishers started for a name pattern; the pattern's scan starts a new one
    /// if the name comes back).
    Gone {
        /// The segment name.
        name: String,
    },
}

impl fmt::Display for BridgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BridgeError::Wire(e) => write!(f, "{e}"),
            BridgeError::Segment { name, source } => write!(f, "segment '{name}': {source}"),
            BridgeError::Mismatch { name, detail } => write!(
                f,
                "segment '{name}' exists with another layout than the remote one ({detail}); \
                 remove it or mirror into another name"
            ),
            BridgeError::Zenoh(e) => write!(f, "zenoh: {e}"),
            BridgeError::Config(s) => write!(f, "configuration: {s}"),
            BridgeError::Gone { name } => write!(f, "segment '{name}' no longer exists"),
        }
    }
}

impl std::error::Error for BridgeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BridgeError::Wire(e) => Some(e),
            BridgeError::Segment { source, .. } => Some(source.as_ref()),
            BridgeError::Zenoh(e) => Some(e.as_ref()),
            _ => None,
        }
    }
}

impl From<WireError> for BridgeError {
    fn from(e: WireError) -> Self {
        BridgeError::Wire(e)
    }
}
