//! Segment names, compatible with Python's `multiprocessing.shared_memory`.
//!
//! Python passes `"/" + name` to `shm_open`, so the segment Python calls `sensors` is the
//! POSIX object `/sensors` (the file `/dev/shm/sensors` on Linux). flexshm does the same:
//! callers give the bare name; a single leading `/` is accepted and ignored, so `/sensors`
//! names the same segment.

use crate::error::Error;

/// Longest name in bytes, without the leading `/` (Linux `NAME_MAX`: the segment is the
/// file `/dev/shm/<name>`). A name of this length works; one byte more is
/// [`Error::InvalidName`].
///
/// ```
/// use flexshm_std::{Dynamic, Error, Reader};
/// let long = "x".repeat(flexshm_std::MAX_NAME_BYTES + 1);
/// assert!(matches!(Reader::<Dynamic>::open(&long), Err(Error::InvalidName { .. })));
/// let longest = "x".repeat(flexshm_std::MAX_NAME_BYTES);
/// assert!(matches!(Reader::<Dynamic>::open(&longest), Err(Error::NotFound { .. })));
/// ```
pub const MAX_NAME_BYTES: usize = 255;

/// Names of the temporary files a segment is created under before it is published;
/// not allowed as segment names.
pub(crate) const TEMP_PREFIX: &str = ".flexshm-new-";

/// A validated segment name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShmName {
    /// The bare name, without a leading `/` (used in messages).
    bare: String,
}

impl ShmName {
    pub(crate) fn parse(name: &str) -> Result<ShmName, Error> {
        let invalid = |reason| Error::InvalidName {
            name: name.to_string(),
            reason,
        };
        let bare = name.strip_prefix('/').unwrap_or(name);
        if bare.is_empty() {
            return Err(invalid("the name is empty"));
        }
        if bare.contains('/') {
            return Err(invalid(
                "a segment name cannot contain '/' (only one leading '/' is allowed)",
            ));
        }
        if bare.contains('\0') {
            return Err(invalid("a segment name cannot contain a NUL byte"));
        }
        if bare == "." || bare == ".." {
            return Err(invalid("'.' and '..' are not segment names"));
        }
        if bare.len() > MAX_NAME_BYTES {
            return Err(invalid("a segment name is at most 255 bytes long"));
        }
        if bare.starts_with(TEMP_PREFIX) {
            return Err(invalid(
                "names starting with '.flexshm-new-' are reserved for segments being created",
            ));
        }
        Ok(ShmName {
            bare: bare.to_string(),
        })
    }

    /// The name without the leading `/`.
    pub(crate) fn bare(&self) -> &str {
        &self.bare
    }

    /// The name as POSIX `shm_open` spells it: `/` + bare.
    #[cfg(test)]
    pub(crate) fn posix(&self) -> String {
        format!("/{}", self.bare)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_compatible_names() {
        let n = ShmName::parse("sensors").unwrap();
        assert_eq!(n.posix(), "/sensors");
        assert_eq!(n.bare(), "sensors");
        assert_eq!(ShmName::parse("/sensors").unwrap(), n);
        assert_eq!(ShmName::parse("psm_1a2b").unwrap().posix(), "/psm_1a2b");
    }

    #[test]
    fn bad_names_say_why() {
        for (bad, why) in [
            ("", "empty"),
            ("/", "empty"),
            ("a/b", "'/'"),
            ("//a", "'/'"),
            ("a\0b", "NUL"),
            ("..", "'..'"),
        ] {
            match ShmName::parse(bad) {
                Err(Error::InvalidName { name, reason }) => {
                    assert_eq!(name, bad);
                    assert!(reason.contains(why), "{bad:?}: {reason}");
                }
                other => panic!("{bad:?}: expected InvalidName, got {other:?}"),
            }
        }
        assert!(ShmName::parse(&"x".repeat(255)).is_ok());
        assert!(matches!(
            ShmName::parse(&"x".repeat(256)),
            Err(Error::InvalidName { .. })
        ));
    }
}
