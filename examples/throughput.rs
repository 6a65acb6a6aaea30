//! Single-thread chunking throughput, side by side with the `fastcdc` crate
//! in the same run: N rounds over one buffer, each timing the crate and every
//! kernel once; the median rate of each, and the median of its per-round
//! ratios to the crate.
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
    // Round robin: each run times the crate and every kernel once, so a
    // shared machine's slow and fast moments fall on all of them alike; each
    // kernel's ratio is the median of its per-run ratios to the crate. Each
    // run starts one contender later than the one before, so that none is
    // always timed right after the same other.
    let mut contenders: Vec<(String, Box<dyn Fn() -> usize>)> = vec![(
        "fastcdc crate v2020".to_string(),
        Box::new(|| fastcdc::v2020::FastCDC::new(&data, 16 << 10, 64 << 10, 256 << 10).count()),
    )];
    for algorithm in [Algorithm::FastCdc, Algorithm::Vector] {
        for backend in Backend::available() {
            let chunker =
                Chunker::new(ChunkerConfig::default().with_algorithm(algorithm), backend).unwrap();
            let data = &data;
            contenders.push((
                format!("{algorithm}/{backend}"),
                Box::new(move || chunker.cut_points(data).len()),
            ));
        }
    }
    // FastCDC one chunk at a time (the block kernels, as a stream is cut),
    // beside the whole-input driver above (four chunkers in lockstep).
    let chunker = Chunker::auto(ChunkerConfig::default().with_algorithm(Algorithm::FastCdc));
    let data_ref = &data;
    contenders.push((
        format!("fastcdc/{} chunk by chunk", chunker.backend()),
        Box::new(move || {
            let (mut pos, mut n) = (0, 0);
            while pos < data_ref.len() {
                pos = chunker.next_cut(data_ref, pos);
                n += 1;
            }
            n
        }),
    ));
    let mut rates = vec![Vec::new(); contenders.len()];
    let mut counts = vec![0; contenders.len()];
    for run in 0..runs {
        for k in 0..contenders.len() {
            let i = (run + k) % contenders.len();
            let f = &contenders[i].1;
            let t = Instant::now();
            counts[i] = std::hint::black_box(f());
            rates[i].push(data.len() as f64 / t.elapsed().as_secs_f64() / 1e9);
        }
    }
    for (i, (name, _)) in contenders.iter().enumerate() {
        let ratios = rates[i].iter().zip(&rates[0]).map(|(r, b)| r / b).collect();
        println!(
            "{name:<28} {:>7.2} GB/s  {:>6} chunks  ratio {:.2}",
            median(rates[i].clone()),
            counts[i],
            median(ratios)
        );
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
