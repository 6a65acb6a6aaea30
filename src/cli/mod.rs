//! clap front end: parsing, output formats and exit codes.
//!
//! Exit codes: 0 success, 1 an error (printed once, with its causes, to
//! stderr), 2 a usage error, 130 interrupted (the default SIGINT action).
//! A closed stdout pipe ends the program quietly with 0.

mod chunk;
mod pack;
mod size;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Turn a root file system into an OCI image whose layers survive updates.
#[derive(Debug, Parser)]
#[command(name = "chunkah", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Split files into content-defined chunks; one JSON object per chunk and line.
    Chunk(chunk::ChunkArgs),
    /// Pack a root file system into an OCI image with layers that survive updates.
    Pack(pack::PackArgs),
}

/// Runs the command line and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Chunk(args) => chunk::run(args),
        Command::Pack(args) => pack::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(io::stderr(), "chunkah: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}
