//! Single-thread chunking throughput, side by side with the `fastcdc` crate
//! in the same run: median of N runs over one buffer, and the ratio to the crate.
//!
//! `cargo run --release --example throughput [FILE] [RUNS]`: FILE defaults to
//! 256 MiB of xorshift bytes; 16K/64K/256K, normalization 1.

use std::time::Instant;

use chunkah::chunker::{golden_input, Algorithm, Backend, Chunker, ChunkerConfig};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn time<F: FnMut() -> usize>(runs: usize, bytes: usize, mut f: F) -> (f64, usize) {
    let mut rates = Vec::new();
    let mut n = 0;
    for _ in 0..runs {
        let t = Instant::now();
        n = std::hint::black_box(f());
        rates.push(bytes as f64 / t.elapsed().as_secs_f64() / 1e9);
    }
    (median(rates), n)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let data = match args.next() {
        Some(path) if path != "-" => std::fs::read(&path).expect("reading the input file"),
        _ => golden_input(0x9e37_79b9_7f4a_7c15, 256 << 20),
    };
    let runs: usize = args
        .next()
        .map_or(7, |r| r.parse().expect("RUNS is a number"));
    // The kernels `Chunker::auto` takes here, chosen by measured speed.
    for algorithm in [Algorithm::FastCdc, Algorithm::Vector] {
        let timings: Vec<String> = Backend::measure(algorithm)
            .iter()
            .map(|(b, t)| format!("{b} {:.0} us", t.as_secs_f64() * 1e6))
            .collect();
        println!(
            "kernel chosen for {algorithm}: {} (256 KiB probe: {})",
            Backend::fastest(algorithm),
            timings.join(", ")
        );
    }
    let (base, n) = time(runs, data.len(), || {
        fastcdc::v2020::FastCDC::new(&data, 16 << 10, 64 << 10, 256 << 10).count()
    });
    println!(
        "{:<28} {:>7.2} GB/s  {:>6} chunks  ratio 1.00",
        "fastcdc crate v2020", base, n
    );
    for algorithm in [Algorithm::FastCdc, Algorithm::Vector] {
        for backend in Backend::available() {
            let chunker =
                Chunker::new(ChunkerConfig::default().with_algorithm(algorithm), backend).unwrap();
            let (rate, n) = time(runs, data.len(), || chunker.cut_points(&data).len());
            let name = format!("{algorithm}/{backend}");
            println!(
                "{name:<28} {rate:>7.2} GB/s  {n:>6} chunks  ratio {:.2}",
                rate / base
            );
        }
    }
    // One buffer split across threads (exact resynchronisation), best backend.
    for algorithm in [Algorithm::FastCdc, Algorithm::Vector] {
        let chunker = Chunker::auto(ChunkerConfig::default().with_algorithm(algorithm));
        let mut one = 0.0;
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let (rate, n) =
                pool.install(|| time(runs, data.len(), || chunker.chunks_parallel(&data).len()));
            if threads == 1 {
                one = rate;
            }
            let name = format!("{algorithm}/{} {threads} thread(s)", chunker.backend());
            println!(
                "{name:<28} {rate:>7.2} GB/s  {n:>6} chunks  speed-up {:.2}",
                rate / one
            );
        }
    }
}
