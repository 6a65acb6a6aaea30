//! Update cost of a series of root file systems, per chunking algorithm:
//! chunk count, and the bytes of chunks new in each step (chunks whose BLAKE3
//! digest the previous tree lacks, each counted once). Every regular file is
//! chunked on its own, as packing does.
//!
//! `cargo run --release --example series -- DIR1 DIR2 ... [--json]`, e.g. on
//! the trees of `../shared/data/make-rootfs-series.sh`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chunkah::chunker::{digest_chunks, Algorithm, Chunker, ChunkerConfig};
use chunkah::ChunkId;
use rayon::prelude::*;

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry"))
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let ft = e.file_type().expect("file type");
        if ft.is_dir() {
            walk(&e.path(), out);
        } else if ft.is_file() {
            out.push(e.path());
        }
    }
}

/// Digest -> length of every chunk of every regular file under `dir`.
fn chunk_tree(chunker: &Chunker, files: &[PathBuf]) -> (HashMap<ChunkId, u64>, usize, u64) {
    let per_file: Vec<Vec<(ChunkId, u64)>> = files
        .par_iter()
        .map(|f| {
            let data = std::fs::read(f).unwrap_or_else(|e| panic!("reading {}: {e}", f.display()));
            digest_chunks(&data, &chunker.chunks(&data))
                .into_iter()
                .map(|c| (c.id, c.chunk.length))
                .collect()
        })
        .collect();
    let count = per_file.iter().map(Vec::len).sum();
    let bytes = per_file.iter().flatten().map(|c| c.1).sum();
    (per_file.into_iter().flatten().collect(), count, bytes)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let dirs: Vec<&String> = args.iter().filter(|a| *a != "--json").collect();
    assert!(dirs.len() >= 2, "usage: series DIR1 DIR2 ... [--json]");
    let trees: Vec<Vec<PathBuf>> = dirs
        .iter()
        .map(|d| {
            let mut files = Vec::new();
            walk(Path::new(d), &mut files);
            files
        })
        .collect();
    let mut report = Vec::new();
    for algorithm in [Algorithm::FastCdc, Algorithm::Vector] {
        let chunker = Chunker::auto(ChunkerConfig::default().with_algorithm(algorithm));
        let t = Instant::now();
        let sets: Vec<_> = trees
            .iter()
            .map(|files| chunk_tree(&chunker, files))
            .collect();
        let secs = t.elapsed().as_secs_f64();
        for (i, (set, count, bytes)) in sets.iter().enumerate() {
            let unique: u64 = set.values().sum();
            let new_bytes = (i > 0).then(|| {
                let old = &sets[i - 1].0;
                set.iter()
                    .filter(|(id, _)| !old.contains_key(*id))
                    .map(|(_, n)| n)
                    .sum::<u64>()
            });
            report.push(serde_json::json!({
                "algorithm": algorithm.name(),
                "tree": dirs[i],
                "files": trees[i].len(),
                "bytes": bytes,
                "chunks": count,
                "uniqueChunks": set.len(),
                "uniqueBytes": unique,
                "newBytes": new_bytes,
            }));
        }
        eprintln!("{algorithm}: chunked {} trees in {secs:.1}s", trees.len());
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap());
        return;
    }
    println!(
        "{:<8} {:<22} {:>6} {:>12} {:>8} {:>12} {:>12}",
        "algo", "tree", "files", "bytes", "chunks", "unique", "new bytes"
    );
    for r in &report {
        println!(
            "{:<8} {:<22} {:>6} {:>12} {:>8} {:>12} {:>12}",
            r["algorithm"].as_str().unwrap(),
            r["tree"].as_str().unwrap(),
            r["files"],
            r["bytes"],
            r["chunks"],
            r["uniqueBytes"],
            r["newBytes"]
                .as_u64()
                .map_or("-".to_string(), |n| n.to_string()),
        );
    }
    let n = dirs.len();
    for i in 1..n {
        let f = report[i]["newBytes"].as_u64().unwrap() as f64;
        let v = report[n + i]["newBytes"].as_u64().unwrap() as f64;
        println!(
            "step {} -> {}: vector/fastcdc new bytes = {:.4} ({:+.2}%)",
            dirs[i - 1],
            dirs[i],
            v / f,
            (v / f - 1.0) * 100.0
        );
    }
}
