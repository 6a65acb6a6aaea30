//! `chunkah chunk`: content-defined chunks of files as JSON lines.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chunkah::chunker::{
    digest_chunks, Algorithm, Backend, Chunk, Chunker, ChunkerConfig, MappedFile, StreamChunker,
};
use chunkah::ChunkId;
use clap::{Args, ValueEnum};
use rayon::prelude::*;

use super::size::parse_size;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DigestKind {
    /// BLAKE3 of each chunk's bytes.
    Blake3,
    /// No digest: cut points only.
    None,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum AlgorithmArg {
    /// FastCDC v2020, cut points identical to the fastcdc crate.
    Fastcdc,
    /// The SIMD-native 32-bit gear hash (docs/VECTOR.md).
    Vector,
}

#[derive(Debug, Args)]
pub struct ChunkArgs {
    /// Files to chunk; `-` reads standard input.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// The rolling hash.
    #[arg(long, value_enum, default_value = "vector")]
    algorithm: AlgorithmArg,
    /// Minimum chunk size (suffixes K, KiB, M, MiB).
    #[arg(long, default_value = "16K", value_parser = parse_size)]
    min: usize,
    /// Average chunk size.
    #[arg(long, default_value = "64K", value_parser = parse_size)]
    avg: usize,
    /// Maximum chunk size.
    #[arg(long, default_value = "256K", value_parser = parse_size)]
    max: usize,
    /// Normalization level, 0 to 3.
    #[arg(long, default_value_t = 1)]
    normalization: u32,
    /// Kernel backend: scalar, avx2, avx512, neon or auto [env: CHUNKAH_BACKEND].
    #[arg(long)]
    backend: Option<String>,
    /// Worker threads (default: one per core).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    /// Chunk digest.
    #[arg(long, value_enum, default_value = "blake3")]
    digest: DigestKind,
}

/// How many small files to chunk in parallel before printing them in order.
const FILE_BATCH: usize = 64;

pub fn run(args: ChunkArgs) -> Result<()> {
    let backend_name = match &args.backend {
        Some(b) => b.clone(),
        None => std::env::var("CHUNKAH_BACKEND").unwrap_or_else(|_| "auto".to_string()),
    };
    let algorithm = match args.algorithm {
        AlgorithmArg::Fastcdc => Algorithm::FastCdc,
        AlgorithmArg::Vector => Algorithm::Vector,
    };
    let backend = match backend_name.as_str() {
        "auto" => Backend::fastest(algorithm),
        name => Backend::from_name(name).context("choosing the chunker backend")?,
    };
    let config = ChunkerConfig::new(args.min, args.avg, args.max, args.normalization)?
        .with_algorithm(algorithm);
    let chunker = Chunker::new(config, backend)?;
    let threads = match args.threads {
        Some(n) => usize::from(n),
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let digest = matches!(args.digest, DigestKind::Blake3);
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout());
    pool.install(|| -> Result<()> {
        for batch in args.files.chunks(FILE_BATCH) {
            let results: Vec<Result<()>> = if batch.len() == 1 {
                vec![chunk_path(&chunker, &batch[0], digest, &mut out)]
            } else {
                // Small files in parallel, each into its own buffer, printed in order.
                let bufs: Vec<Result<Vec<u8>>> = batch
                    .par_iter()
                    .map(|p| {
                        let mut buf = Vec::new();
                        chunk_path(&chunker, p, digest, &mut buf).map(|()| buf)
                    })
                    .collect();
                bufs.into_iter()
                    .map(|b| b.and_then(|b| out.write_all(&b).map_err(Into::into)))
                    .collect()
            };
            for r in results {
                r?;
            }
        }
        Ok(())
    })?;
    out.flush()?;
    Ok(())
}

/// Chunks one file (or `-`) and writes its JSON lines.
fn chunk_path(chunker: &Chunker, path: &Path, digest: bool, out: &mut dyn Write) -> Result<()> {
    let name = path.to_string_lossy();
    if path == Path::new("-") {
        return chunk_stream(chunker, io::stdin().lock(), &name, digest, out)
            .context("chunking standard input");
    }
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("reading metadata of {}", path.display()))?;
    if meta.is_dir() {
        anyhow::bail!("{} is a directory", path.display());
    }
    if !meta.is_file() {
        // Pipes, character devices: stream them.
        return chunk_stream(chunker, file, &name, digest, out)
            .with_context(|| format!("chunking {}", path.display()));
    }
    let map = MappedFile::open(path)?;
    let data: &[u8] = &map;
    let chunks = chunker.chunks_parallel(data);
    if digest {
        for c in digest_chunks(data, &chunks) {
            write_record(out, &name, c.chunk, Some(c.id))?;
        }
    } else {
        for c in chunks {
            write_record(out, &name, c, None)?;
        }
    }
    Ok(())
}

fn chunk_stream(
    chunker: &Chunker,
    reader: impl io::Read,
    name: &str,
    digest: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let mut stream = StreamChunker::new(*chunker, reader);
    while let Some((chunk, bytes)) = stream.next_chunk()? {
        let id = digest.then(|| ChunkId::of(bytes));
        write_record(out, name, chunk, id)?;
    }
    Ok(())
}

fn write_record(out: &mut dyn Write, path: &str, c: Chunk, id: Option<ChunkId>) -> io::Result<()> {
    let path = serde_json::to_string(path).expect("a string serialises");
    match id {
        Some(id) => writeln!(
            out,
            r#"{{"path":{path},"offset":{},"length":{},"digest":"{id}"}}"#,
            c.offset, c.length
        ),
        None => writeln!(
            out,
            r#"{{"path":{path},"offset":{},"length":{}}}"#,
            c.offset, c.length
        ),
    }
}
