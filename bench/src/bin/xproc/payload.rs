//! The payload of a latency or FIFO run: a small record or a 640×480×3 image.

use flexshm_bench::{Args, IMG_BYTES};

use crate::Res;

/// Payload size of a run.
#[derive(Clone, Copy, PartialEq)]
pub enum Payload {
    Small,
    Image,
}

impl Payload {
    /// `--payload small|image` (default small).
    pub fn parse(args: &Args) -> Res<Payload> {
        match args.get("payload", String::from("small")).as_str() {
            "small" => Ok(Payload::Small),
            "image" => Ok(Payload::Image),
            p => Err(format!("unknown payload {p}").into()),
        }
    }

    /// Payload size in bytes (the iceoryx2 peer's slice length).
    #[cfg_attr(not(feature = "iceoryx2"), allow(dead_code))]
    pub fn bytes(self) -> usize {
        match self {
            Payload::Small => 64,
            Payload::Image => IMG_BYTES,
        }
    }
}
