//! Chunking throughput: every backend and algorithm beside the `fastcdc` crate,
//! one thread, 16K/64K/256K, on random data and on a real file mix.
//!
//! `cargo bench --bench chunker`; `CHUNKAH_BENCH_MIX=DIR` picks the file mix
//! (default `/usr/lib`, the first 64 MiB of its regular files in sorted order).

use std::path::{Path, PathBuf};

use chunkah::chunker::{golden_input, Algorithm, Backend, Chunker, ChunkerConfig};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const SIZE: usize = 64 << 20;

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.filter_map(|e| e.ok()).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            collect_files(&e.path(), out);
        } else if ft.is_file() {
            out.push(e.path());
        }
    }
}

fn file_mix(n: usize) -> Vec<u8> {
    let dir = std::env::var("CHUNKAH_BENCH_MIX").unwrap_or_else(|_| "/usr/lib".into());
    let mut files = Vec::new();
    collect_files(Path::new(&dir), &mut files);
    let mut data = Vec::with_capacity(n);
    for f in files {
        if data.len() >= n {
            break;
        }
        if let Ok(bytes) = std::fs::read(&f) {
            data.extend_from_slice(&bytes);
        }
    }
    assert!(
        data.len() >= n / 2,
        "the file mix in {dir} holds only {} bytes",
        data.len()
    );
    data.truncate(n);
    data
}

fn bench_input(c: &mut Criterion, name: &str, data: &[u8]) {
    let mut g = c.benchmark_group(format!("chunk/{name}"));
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(10);
    g.bench_function("fastcdc-crate", |b| {
        b.iter(|| fastcdc::v2020::FastCDC::new(data, 16 << 10, 64 << 10, 256 << 10).count())
    });
    for algorithm in [Algorithm::FastCdc, Algorithm::Vector] {
        for backend in Backend::available() {
            let chunker =
                Chunker::new(ChunkerConfig::default().with_algorithm(algorithm), backend).unwrap();
            g.bench_function(BenchmarkId::new(algorithm.name(), backend.name()), |b| {
                b.iter(|| chunker.cut_points(data).len())
            });
        }
    }
    g.finish();
}

fn chunking(c: &mut Criterion) {
    bench_input(c, "random", &golden_input(0x9e37_79b9_7f4a_7c15, SIZE));
    bench_input(c, "file-mix", &file_mix(SIZE));
}

criterion_group!(benches, chunking);
criterion_main!(benches);
