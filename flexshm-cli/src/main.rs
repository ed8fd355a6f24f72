//! `flexshm`: list, inspect, watch, time and remove flexshm shared-memory segments, and
//! bridge them to other machines.
//!
//! The inspecting subcommands only ever open segments as a reader; all their use of
//! flexshm-std is in `source.rs`. `bridge` (feature `bridge`) hands over to the
//! flexshm-zenoh library, whose mirrors write segments. The subcommands live in `cmd/`,
//! one module each.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;
mod model;
mod rate;
mod render;
mod source;
mod tui;
mod users;

/// Inspect flexshm shared-memory segments without disturbing them.
///
/// Segments are the files in /dev/shm; NAME is the segment name as a writer gives it
/// (`sensors`, `/sensors` and `/dev/shm/sensors` are the same segment). Apart from the
/// mirrors of `bridge`, the tool only reads: it never writes a record or takes the writer
/// role.
///
/// Exit status: 0 success, 1 a named segment is missing or not a usable flexshm
/// segment (or another failure, said in one line on stderr), 2 usage error.
#[derive(Debug, Parser)]
#[command(name = "flexshm", version, max_term_width = 100, after_long_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

const EXAMPLES: &str = "Examples:
  flexshm ls                                  every segment, its writer and last commit
  flexshm show sensors                        schema and latest record
  flexshm watch sensors                       live view (q quits)
  flexshm watch sensors --json | jq .fields.temperature.value
  flexshm hz sensors                          commit rate and jitter
  flexshm rm --stale --dry-run                what crashed writers left behind
  flexshm bridge --publish sensors            publish a segment over Zenoh (see bridge --help)";

#[derive(Debug, Subcommand)]
enum Command {
    Ls(cmd::ls::Args),
    Show(cmd::show::Args),
    Watch(cmd::watch::Args),
    Hz(cmd::hz::Args),
    Rm(cmd::rm::Args),
    #[cfg(feature = "bridge")]
    Bridge(cmd::bridge::Args),
}

/// How a subcommand failed: the exit status and the one-line message (none for a
/// closed output pipe, which ends the program quietly).
#[derive(Debug)]
pub struct Failure {
    /// Exit status.
    pub code: u8,
    /// What went wrong, in one line (printed after `flexshm: `).
    pub message: Option<String>,
}

impl Failure {
    /// Exit status 1 with `message`.
    pub fn new(message: impl Into<String>) -> Failure {
        Failure {
            code: 1,
            message: Some(message.into()),
        }
    }

    /// A failure that was already reported line by line (exit status 1).
    pub fn reported() -> Failure {
        Failure {
            code: 1,
            message: None,
        }
    }
}

impl From<source::SourceError> for Failure {
    fn from(e: source::SourceError) -> Failure {
        let code = match e.kind {
            source::ErrorKind::InvalidName => 2,
            _ => 1,
        };
        Failure {
            code,
            message: Some(e.to_string()),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            // `flexshm watch --json | head`: the reader left; that is the end.
            Failure {
                code: 0,
                message: None,
            }
        } else {
            Failure::new(format!("writing the output failed: {e}"))
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Ls(a) => cmd::ls::run(a),
        Command::Show(a) => cmd::show::run(a),
        Command::Watch(a) => cmd::watch::run(a),
        Command::Hz(a) => cmd::hz::run(a),
        Command::Rm(a) => cmd::rm::run(a),
        #[cfg(feature = "bridge")]
        Command::Bridge(a) => cmd::bridge::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if let Some(m) = f.message {
                // One line, whatever a segment's name or contents hold.
                eprintln!("flexshm: {}", render::clean(&m));
            }
            ExitCode::from(f.code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
