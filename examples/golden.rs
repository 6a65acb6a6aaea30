//! Writes the chunker's golden vectors to `testdata/golden/chunker.json`.
//!
//! FastCDC vectors come from the `fastcdc` crate (the oracle), vector-hash
//! vectors from chunkah's scalar reference. Inputs are described by a seed and
//! a length (see `golden_input`), so the file stays small.
//!
//! Run: `cargo run --example golden > testdata/golden/chunker.json`

use chunkah::chunker::{golden_input, Algorithm, Backend, Chunker, ChunkerConfig};
use chunkah::ChunkId;
use fastcdc::v2020::{FastCDC, Normalization};
use serde_json::json;

fn main() {
    let configs = [
        (16 << 10, 64 << 10, 256 << 10, 1),
        (64, 256, 1024, 0),
        (512, 2048, 8192, 2),
        (4096, 16384, 65536, 3),
        (8192, 8192, 8192, 1),
    ];
    let inputs = [
        (1u64, 0usize),
        (2, 100),
        (3, 1 << 20),
        (4, (1 << 20) + 1),
        (5, 3_000_001),
        (6, 20_000),
    ];
    let level = [
        Normalization::Level0,
        Normalization::Level1,
        Normalization::Level2,
        Normalization::Level3,
    ];
    let mut vectors = Vec::new();
    for &(min, avg, max, l) in &configs {
        for &(seed, len) in &inputs {
            // Small chunks on long inputs would only make the file large.
            let len = if avg < 4096 { len.min(100_000) } else { len };
            let data = golden_input(seed, len);
            for algorithm in [Algorithm::FastCdc, Algorithm::Vector] {
                let cuts: Vec<(usize, usize)> = match algorithm {
                    Algorithm::FastCdc => {
                        FastCDC::with_level(&data, min, avg, max, level[l as usize])
                            .map(|c| (c.offset, c.length))
                            .collect()
                    }
                    Algorithm::Vector => {
                        let config = ChunkerConfig::new(min, avg, max, l)
                            .unwrap()
                            .with_algorithm(algorithm);
                        Chunker::new(config, Backend::Scalar)
                            .unwrap()
                            .chunks(&data)
                            .iter()
                            .map(|c| (c.offset as usize, c.length as usize))
                            .collect()
                    }
                };
                let chunks: Vec<_> = cuts
                    .iter()
                    .map(|&(o, n)| json!([o, n, ChunkId::of(&data[o..o + n]).to_string()]))
                    .collect();
                vectors.push(json!({
                    "algorithm": algorithm.name(),
                    "seed": seed,
                    "length": len,
                    "min": min, "avg": avg, "max": max, "normalization": l,
                    "chunks": chunks,
                }));
            }
        }
    }
    // One vector per line: small, and diffs stay readable.
    println!("{{");
    println!("  \"schemaVersion\": 1,");
    println!("  \"input\": \"xorshift64 from seed|1: x ^= x << 13; x ^= x >> 7; x ^= x << 17; byte = (x >> 24) & 0xff\",");
    println!("  \"chunks\": \"[offset, length, blake3 digest]\",");
    println!("  \"vectors\": [");
    for (i, v) in vectors.iter().enumerate() {
        let sep = if i + 1 < vectors.len() { "," } else { "" };
        println!("    {v}{sep}");
    }
    println!("  ]");
    println!("}}");
}
