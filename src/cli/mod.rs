//! clap front end: parsing, output formats and exit codes.
//!
//! Exit codes: 0 success, 1 an error (printed once, with its causes, to
//! stderr), 2 a usage error, 130 interrupted (Ctrl-C or SIGTERM: a job
//! stops cleanly and publishes nothing; `chunk` takes the default action).
//! A closed stdout pipe ends the program quietly with 0.

mod apply;
mod base_config;
mod build;
mod chart;
mod chunk;
mod delta;
mod diff;
mod grouping_args;
mod pack;
mod plan_args;
mod progress;
mod registry_args;
mod report;
mod sbom;
mod size;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Turn a root file system into an OCI image whose layers survive updates.
#[derive(Debug, Parser)]
#[command(name = "chunkah", version, about, propagate_version = true)]
pub struct Cli {
    /// More messages on stderr (-v, -vv; `build` only).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Split files into content-defined chunks; one JSON object per chunk and line.
    Chunk(chunk::ChunkArgs),
    /// Pack a root file system into an OCI image with layers that survive updates.
    Pack(pack::PackArgs),
    /// What a client holding OLD downloads to get NEW, at four levels.
    Diff(diff::DiffArgs),
    /// Rebuild NEW from OLD and only the byte ranges of NEW it lacks (also
    /// `chunkah pull`: a partial pull from `--source docker://…`).
    #[command(visible_alias = "pull")]
    Apply(apply::ApplyArgs),
    /// Update bandwidth at every level for a series of image versions.
    Report(report::ReportArgs),
    /// Make a binary delta from OLD to NEW and publish it beside NEW.
    Delta(delta::DeltaArgs),
    /// The packages of a root file system as an SPDX or CycloneDX document.
    Sbom(sbom::SbomArgs),
    /// Build an OCI archive from a rootfs: coreos/chunkah's `build` command
    /// line, flag for flag.
    Build(build::BuildArgs),
}

/// Runs the command line and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // diff --exit-code reports errors with 2, as diff(1) does.
    let mut error_code = 1;
    let result = match cli.command {
        Command::Chunk(args) => chunk::run(args).map(|()| 0),
        Command::Pack(args) => pack::run(args).map(|()| 0),
        Command::Apply(args) => apply::run(args).map(|()| 0),
        Command::Report(args) => report::run(args).map(|()| 0),
        Command::Delta(args) => delta::run(args).map(|()| 0),
        Command::Sbom(args) => sbom::run(args).map(|()| 0),
        Command::Build(args) => build::run(args, cli.verbose).map(|()| 0),
        Command::Diff(args) => {
            if args.exit_code() {
                error_code = 2;
            }
            diff::run(args)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e)
            if e.chain()
                .any(|c| matches!(c.downcast_ref(), Some(chunkah::Error::Cancelled))) =>
        {
            let _ = writeln!(io::stderr(), "chunkah: interrupted; nothing was published");
            ExitCode::from(130)
        }
        Err(e) => {
            let _ = writeln!(io::stderr(), "chunkah: error: {}", render(&e));
            // A value out of range is a usage mistake, found after parsing.
            let usage = e.chain().any(|c| {
                matches!(
                    c.downcast_ref(),
                    Some(chunkah::Error::Config(_) | chunkah::Error::UnknownName { .. })
                )
            });
            ExitCode::from(if usage { 2 } else { error_code })
        }
    }
}

/// `flag`, else `SOURCE_DATE_EPOCH` from the environment, else none.
pub fn source_date_epoch(flag: Option<i64>) -> anyhow::Result<Option<i64>> {
    Ok(match flag {
        Some(e) => Some(e),
        None => match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(v) => Some(v.trim().parse().map_err(|_| {
                chunkah::Error::Config(format!("SOURCE_DATE_EPOCH={v:?} is not a number"))
            })?),
            Err(_) => None,
        },
    })
}

/// The error and its causes on one line, each said once: a library error's
/// message already ends with its source's, which is then not repeated.
/// Control characters (from names in a malformed tarball, say) are escaped.
fn render(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = escape_controls(&cause.to_string());
        if out.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// The context a command's job runs with: the registry flags' `store`,
/// `threads` (default one per core), `arch` (normalised; default this
/// machine's), and a cancel flag Ctrl-C and SIGTERM set.
pub fn job_context(
    store: chunkah::store::StoreConfig,
    threads: Option<usize>,
    arch: Option<&str>,
) -> chunkah::jobs::JobContext<'static> {
    let default = chunkah::jobs::JobContext::default();
    chunkah::jobs::JobContext {
        store,
        threads,
        architecture: arch.map_or(default.architecture.clone(), |a| {
            base_config::normalize_architecture(a).to_string()
        }),
        cancel: cancel_on_signals(),
        ..default
    }
}

/// The flag Ctrl-C (SIGINT) and SIGTERM set, once [`cancel_on_signals`] ran.
static CANCEL: std::sync::OnceLock<std::sync::Arc<std::sync::atomic::AtomicBool>> =
    std::sync::OnceLock::new();

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic load and store: async-signal-safe.
    if let Some(flag) = CANCEL.get() {
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// `text` with control characters escaped (`\n`, `\u{1b}`), so that an
/// error message cannot drive the terminal.
pub(crate) fn escape_controls(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Makes the first SIGINT or SIGTERM set the returned flag instead of killing
/// the process, so long work can stop cleanly; a second one kills it.
pub fn cancel_on_signals() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    let flag = CANCEL.get_or_init(Default::default).clone();
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction is valid; the handler only touches atomics,
        // and SA_RESETHAND restores the default action after the first signal.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            action.sa_flags = libc::SA_RESETHAND | libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
    }
    flag
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            super::escape_controls("a\u{1b}[31mb\nc\u{7f}é"),
            "a\\u{1b}[31mb\\nc\\u{7f}é"
        );
    }
}
