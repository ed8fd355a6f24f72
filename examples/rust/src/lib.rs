//! Shared pieces of the flexshm examples: the record types and the command-line flags.
//!
//! Every example binary accepts `--name NAME` (the segment name), `--count N` (how many
//! records to write or read; 0 = until stopped), and the writers `--unlink` (remove the
//! segment on exit; by default it stays, like any named shared memory).

use std::time::Duration;

use flexshm_std::record;

record! {
    /// The seed's Quick Start record.
    #[derive(Debug, Default, Clone, PartialEq)]
    pub struct SensorData {
        /// Degrees Celsius.
        pub temperature: f64,
        /// Hectopascal.
        pub pressure: f64,
        /// Seconds since the Unix epoch.
        pub timestamp: f64,
        /// Up to 32 characters of text.
        pub status_msg: str[32],
    }
}

record! {
    /// One FIFO message: a sequence number and a value derived from it.
    #[derive(Debug, Default, Clone, PartialEq)]
    pub struct Sample {
        /// 1, 2, 3, ... in the order the producer wrote them.
        pub seq: u64,
        /// `seq * 0.5`, so a consumer can check the record is whole.
        pub value: f64,
    }
}

/// Image height in pixels.
pub const HEIGHT: usize = 480;
/// Image width in pixels.
pub const WIDTH: usize = 640;

record! {
    /// One 640x480 RGB frame (`uint8[480,640,3]`) and its frame number.
    pub struct Frame {
        /// 1, 2, 3, ...
        pub frame: u64,
        /// Row-major RGB pixels.
        pub pixels: [[[u8; 3]; 640]; 480],
    }
}

impl Frame {
    /// A zeroed frame on the heap (900 KiB is too much for some threads' stacks).
    pub fn boxed() -> Box<Frame> {
        Box::new(Frame {
            frame: 0,
            pixels: [[[0; 3]; WIDTH]; HEIGHT],
        })
    }

    /// The test pattern of frame `n`: every byte is a function of (n, row, column,
    /// channel), so a reader can check that a frame is not a mix of two.
    pub fn pattern(n: u64, y: usize, x: usize, c: usize) -> u8 {
        (n as usize * 7 + y + 3 * x + 85 * c) as u8
    }

    /// Fills the frame with the test pattern of frame `n`.
    pub fn fill(&mut self, n: u64) {
        self.frame = n;
        for (y, row) in self.pixels.iter_mut().enumerate() {
            for (x, px) in row.iter_mut().enumerate() {
                for (c, v) in px.iter_mut().enumerate() {
                    *v = Frame::pattern(n, y, x, c);
                }
            }
        }
    }

    /// True if every pixel holds the pattern of this frame's number.
    pub fn is_consistent(&self) -> bool {
        self.pixels.iter().enumerate().all(|(y, row)| {
            row.iter().enumerate().all(|(x, px)| {
                px.iter()
                    .enumerate()
                    .all(|(c, v)| *v == Frame::pattern(self.frame, y, x, c))
            })
        })
    }
}

/// The flags every example understands.
#[derive(Debug, Clone)]
pub struct Args {
    /// `--name`: the segment name.
    pub name: String,
    /// `--count`: records to write or read; 0 = until stopped.
    pub count: u64,
    /// `--interval-ms`: pause between writes.
    pub interval: Duration,
    /// `--timeout-ms`: how long a reader waits for a record.
    pub timeout: Duration,
    /// `--unlink`: writers remove the segment when they finish.
    pub unlink: bool,
    /// `--latest`: FIFO consumers skip to the newest record.
    pub latest: bool,
}

impl Args {
    /// Parses the process arguments, with the example's defaults; exits with a usage
    /// message on a bad flag.
    pub fn parse(default_name: &str, default_count: u64, default_interval_ms: u64) -> Args {
        match Args::parse_from(
            std::env::args().skip(1),
            default_name,
            default_count,
            default_interval_ms,
        ) {
            Ok(a) => a,
            Err(msg) => {
                eprintln!("{msg}");
                eprintln!(
                    "flags: --name NAME  --count N (0 = forever)  --interval-ms MS  \
                     --timeout-ms MS  --unlink  --latest"
                );
                std::process::exit(2);
            }
        }
    }

    /// Parses `args` (without the program name).
    pub fn parse_from(
        args: impl IntoIterator<Item = String>,
        default_name: &str,
        default_count: u64,
        default_interval_ms: u64,
    ) -> Result<Args, String> {
        let mut a = Args {
            name: default_name.to_string(),
            count: default_count,
            interval: Duration::from_millis(default_interval_ms),
            timeout: Duration::from_secs(5),
            unlink: false,
            latest: false,
        };
        let mut it = args.into_iter();
        while let Some(flag) = it.next() {
            let mut value = |flag: &str| it.next().ok_or(format!("{flag} needs a value"));
            let number = |flag: &str, v: String| {
                v.parse::<u64>()
                    .map_err(|_| format!("{flag}: '{v}' is not a number"))
            };
            match flag.as_str() {
                "--name" => a.name = value("--name")?,
                "--count" => a.count = number("--count", value("--count")?)?,
                "--interval-ms" => {
                    a.interval =
                        Duration::from_millis(number("--interval-ms", value("--interval-ms")?)?)
                }
                "--timeout-ms" => {
                    a.timeout =
                        Duration::from_millis(number("--timeout-ms", value("--timeout-ms")?)?)
                }
                "--unlink" => a.unlink = true,
                "--latest" => a.latest = true,
                other => return Err(format!("unknown flag '{other}'")),
            }
        }
        Ok(a)
    }

    /// True while `done` records are fewer than `--count` (always, with `--count 0`).
    pub fn more(&self, done: u64) -> bool {
        self.count == 0 || done < self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_and_reject() {
        let a = Args::parse_from(
            ["--name", "x", "--count", "3", "--unlink"].map(String::from),
            "d",
            0,
            10,
        )
        .unwrap();
        assert_eq!((a.name.as_str(), a.count, a.unlink), ("x", 3, true));
        assert!(a.more(2) && !a.more(3));
        assert!(
            Args::parse_from(["--count", "x"].map(String::from), "d", 0, 10)
                .unwrap_err()
                .contains("'x'")
        );
        assert!(Args::parse_from(["--bogus"].map(String::from), "d", 0, 10).is_err());
    }

    #[test]
    fn frame_pattern_detects_a_mix() {
        let mut f = Frame::boxed();
        f.fill(5);
        assert!(f.is_consistent());
        f.pixels[479][639][2] ^= 1;
        assert!(!f.is_consistent());
    }
}
