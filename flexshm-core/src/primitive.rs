//! The single import point for the atomic primitives that touch a region.
//!
//! Under `--cfg loom` the same names resolve to loom's model-checked types, so the
//! seqlock and ring code is exercised unchanged by the loom tests.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32};
#[cfg(not(loom))]
pub(crate) use portable_atomic::{fence, AtomicU32};

pub(crate) use core::sync::atomic::Ordering;
