//! flexshm-zenoh: bridges flexshm segments over Zenoh.
pub use zenoh;
