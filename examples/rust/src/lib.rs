//! Shared pieces of the flexshm examples: record types and command-line flags.
