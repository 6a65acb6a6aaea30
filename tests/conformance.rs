//! Every backend against the scalar reference and the `fastcdc` crate (the oracle).

use chunkah::chunker::{
    golden_input, Algorithm, Backend, Chunk, Chunker, ChunkerConfig, StreamChunker,
};
use fastcdc::v2020::{FastCDC, Normalization};
use proptest::prelude::*;

fn level(l: u32) -> Normalization {
    match l {
        0 => Normalization::Level0,
        1 => Normalization::Level1,
        2 => Normalization::Level2,
        _ => Normalization::Level3,
    }
}

fn oracle(data: &[u8], c: &ChunkerConfig) -> Vec<Chunk> {
    FastCDC::with_level(data, c.min(), c.avg(), c.max(), level(c.normalization()))
        .map(|ch| Chunk {
            offset: ch.offset as u64,
            length: ch.length as u64,
        })
        .collect()
}

/// An independent, deliberately plain implementation of the vector algorithm's
/// specification (docs/VECTOR.md), written without the driver's machinery.
fn vector_spec(data: &[u8], c: &ChunkerConfig) -> Vec<Chunk> {
    use chunkah::chunker::gear::{vector_masks, VECTOR_MIX, VECTOR_NIBBLES};
    let t = |b: u8| {
        u32::from(VECTOR_NIBBLES[0][(b & 15) as usize] ^ VECTOR_NIBBLES[1][(b >> 4) as usize])
    };
    let (ms, ml) = vector_masks(c.avg(), c.normalization());
    let mut out = Vec::new();
    let mut start = 0;
    while start < data.len() {
        let n = data.len() - start;
        let mut len = n.min(c.max());
        if n > c.min() {
            for rel in c.min()..len {
                let i = start + rel;
                let h = (0..32).fold(0u32, |h, k| {
                    let b = if i >= 31 - k { data[i + k - 31] } else { 0 };
                    if i + k >= 31 {
                        (h << 1).wrapping_add(t(b))
                    } else {
                        h
                    }
                });
                let m = if rel < c.avg() { ms } else { ml };
                if h.wrapping_mul(VECTOR_MIX) & m == 0 {
                    len = rel;
                    break;
                }
            }
        }
        out.push(Chunk {
            offset: start as u64,
            length: len as u64,
        });
        start += len;
    }
    out
}

fn stream_chunks(chunker: Chunker, data: &[u8], read_size: usize) -> Vec<Chunk> {
    struct Dribble<'a>(&'a [u8], usize);
    impl std::io::Read for Dribble<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.1).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let mut s = StreamChunker::new(chunker, Dribble(data, read_size));
    let mut out = Vec::new();
    let mut expect_offset = 0;
    while let Some((c, bytes)) = s.next_chunk().unwrap() {
        assert_eq!(c.offset, expect_offset);
        assert_eq!(
            bytes,
            &data[c.offset as usize..(c.offset + c.length) as usize]
        );
        expect_offset += c.length;
        out.push(c);
    }
    out
}

/// Checks every backend on `data` with `config`, for both algorithms.
fn check_all(data: &[u8], config: ChunkerConfig) {
    let fc = config.with_algorithm(Algorithm::FastCdc);
    let expected = oracle(data, &fc);
    let vc = config.with_algorithm(Algorithm::Vector);
    let expected_vector = vector_spec(data, &vc);
    for backend in Backend::available() {
        let got = Chunker::new(fc, backend).unwrap().chunks(data);
        assert_eq!(
            got,
            expected,
            "fastcdc, backend {backend}, config {fc:?}, len {}",
            data.len()
        );
        let got = Chunker::new(vc, backend).unwrap().chunks(data);
        assert_eq!(
            got,
            expected_vector,
            "vector, backend {backend}, config {vc:?}, len {}",
            data.len()
        );
    }
}

/// Inputs: random bytes, long runs of one byte, and random data broken by runs.
fn input() -> impl Strategy<Value = Vec<u8>> {
    let random = (any::<u64>(), 0usize..200_000).prop_map(|(s, n)| golden_input(s, n));
    let short = proptest::collection::vec(any::<u8>(), 0..2_000);
    let run = (any::<u8>(), 0usize..100_000).prop_map(|(b, n)| vec![b; n]);
    let mixed = (
        any::<u64>(),
        proptest::collection::vec((0usize..20_000, any::<u8>(), 0usize..20_000), 1..8),
    )
        .prop_map(|(s, parts)| {
            let mut v = Vec::new();
            for (i, (rn, b, bn)) in parts.into_iter().enumerate() {
                v.extend(golden_input(s.wrapping_add(i as u64), rn));
                v.extend(std::iter::repeat_n(b, bn));
            }
            v
        });
    prop_oneof![3 => random, 2 => short, 1 => run, 2 => mixed]
}

/// Valid configurations, mostly small so that inputs hold many chunks.
fn config() -> impl Strategy<Value = ChunkerConfig> {
    (32usize..2_048, 0usize..4, 0usize..8, 0u32..=3).prop_filter_map(
        "valid config",
        |(min2, a, m, l)| {
            let min = min2 * 2;
            let avg = (min.max(256) << a).clamp(256, 4 << 20);
            let max = (avg.max(1024) << m).clamp(1024, 16 << 20);
            ChunkerConfig::new(min, avg, max, l).ok()
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000),
        max_shrink_iters: 200,
        .. ProptestConfig::default()
    })]

    #[test]
    fn every_backend_equals_scalar_and_the_oracle(data in input(), config in config()) {
        check_all(&data, config);
    }

    #[test]
    fn unaligned_slices_equal_the_oracle(seed in any::<u64>(), skip in 1usize..64, n in 0usize..100_000, config in config()) {
        let buf = golden_input(seed, n + 64);
        check_all(&buf[skip..skip + n], config);
    }
}

#[test]
fn default_config_on_a_large_input() {
    let data = golden_input(42, 8 << 20);
    check_all(&data, ChunkerConfig::default());
    check_all(&data[..(8 << 20) - 1], ChunkerConfig::default());
}

/// Inputs large enough for the lockstep driver (four chunkers over an input
/// of at least 8 MiB), with runs that force cuts at the maximum and regions
/// where every position is a candidate, under configurations whose masks it
/// takes; threads too.
#[test]
fn large_inputs_of_every_kind_equal_the_oracle() {
    let len = (9 << 20) + 3;
    let mut mixed = golden_input(11, len);
    for (k, b) in mixed.iter_mut().enumerate() {
        match (k >> 16) % 5 {
            1 => *b = 0,
            3 => *b = (k % 3) as u8,
            _ => {}
        }
    }
    let inputs = [golden_input(5, len), mixed, vec![0x5a; len]];
    let configs = [
        ChunkerConfig::default(),
        ChunkerConfig::around(4 << 10).unwrap(),
        ChunkerConfig::new(2 << 10, 16 << 10, 1 << 20, 3).unwrap(),
    ];
    for data in &inputs {
        for config in configs {
            let fc = config.with_algorithm(Algorithm::FastCdc);
            let expected = oracle(data, &fc);
            for backend in Backend::available() {
                let chunker = Chunker::new(fc, backend).unwrap();
                assert_eq!(chunker.chunks(data), expected, "{backend} {fc:?}");
                // Parts of 4.5 MiB (four lanes each) and of 3 MiB (blocks).
                for threads in [2, 3] {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .unwrap();
                    let parallel = pool.install(|| chunker.chunks_parallel(data));
                    assert_eq!(parallel, expected, "{backend} {fc:?}, {threads} threads");
                }
            }
        }
    }
}

#[test]
fn inputs_no_longer_than_min_are_one_chunk() {
    let config = ChunkerConfig::default();
    for n in [0, 1, 100, config.min() - 1, config.min()] {
        let data = golden_input(n as u64, n);
        check_all(&data, config);
        let chunks = Chunker::auto(config).chunks(&data);
        assert_eq!(chunks.len(), usize::from(n > 0));
    }
}

#[test]
fn constant_input_is_cut_at_max() {
    let config = ChunkerConfig::new(4096, 16384, 65536, 1).unwrap();
    for b in [0u8, 0xff, 0x41] {
        let data = vec![b; 1 << 20];
        check_all(&data, config);
    }
    let chunks =
        Chunker::auto(config.with_algorithm(Algorithm::FastCdc)).chunks(&vec![0u8; 1 << 20]);
    assert!(chunks.iter().all(|c| c.length == 65536));
}

#[test]
fn cuts_in_the_first_window_after_min_are_found() {
    // With a small average and no normalization, many cuts fall within 48 bytes of min:
    // the positions where the chunk's own hash differs from the steady-state hash.
    let config = ChunkerConfig::new(64, 256, 1024, 0)
        .unwrap()
        .with_algorithm(Algorithm::FastCdc);
    let data = golden_input(9, 1 << 20);
    let chunks = oracle(&data, &config);
    let early = chunks
        .iter()
        .filter(|c| c.length > 64 && c.length < 64 + 48)
        .count();
    assert!(
        early > 100,
        "only {early} early cuts: the test would not exercise them"
    );
    check_all(&data, config);
}

#[test]
fn stream_equals_slice() {
    let data = golden_input(5, 3 << 20);
    for algorithm in [Algorithm::FastCdc, Algorithm::Vector] {
        for config in [
            ChunkerConfig::default(),
            ChunkerConfig::new(64, 256, 1024, 2).unwrap(),
        ] {
            let chunker = Chunker::auto(config.with_algorithm(algorithm));
            let expected = chunker.chunks(&data);
            for read_size in [1, 4095, 1 << 20] {
                let input = if read_size == 1 {
                    &data[..200_000]
                } else {
                    &data[..]
                };
                let expected: Vec<Chunk> = if read_size == 1 {
                    chunker.chunks(input)
                } else {
                    expected.clone()
                };
                assert_eq!(
                    stream_chunks(chunker, input, read_size),
                    expected,
                    "{algorithm} read {read_size}"
                );
            }
        }
    }
}

#[test]
fn parallel_equals_sequential() {
    let mut data = golden_input(11, 40 << 20);
    // A long constant run straddling segment bounds makes resynchronisation work harder.
    data[(10 << 20) - 300_000..(10 << 20) + 700_000].fill(0);
    for algorithm in [Algorithm::FastCdc, Algorithm::Vector] {
        let chunker = Chunker::auto(ChunkerConfig::default().with_algorithm(algorithm));
        let expected = chunker.chunks(&data);
        for threads in [2, 3, 4, 7] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let got = pool.install(|| chunker.chunks_parallel(&data));
            assert_eq!(got, expected, "{algorithm}, {threads} threads");
        }
    }
}

#[test]
fn bad_configs_are_clear_errors() {
    for (min, avg, max, l, needle) in [
        (63, 256, 1024, 1, "minimum size 63"),
        (64, 255, 1024, 1, "average size 255"),
        (64, 256, 1 << 30, 1, "maximum size"),
        (66, 258, 1023, 1, "maximum size 1023"),
        (4096, 2048, 8192, 1, "min <= avg <= max"),
        (64, 256, 1024, 4, "normalization level 4"),
        (65, 256, 1024, 1, "must be even"),
    ] {
        let err = ChunkerConfig::new(min, avg, max, l)
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{err:?} lacks {needle:?}");
    }
}

#[test]
fn unavailable_backends_are_errors_not_crashes() {
    for b in Backend::ALL {
        match Chunker::new(ChunkerConfig::default(), b) {
            Ok(_) => assert!(b.is_available()),
            Err(e) => {
                assert!(!b.is_available());
                assert!(e.to_string().contains(b.name()), "{e}");
            }
        }
    }
    assert!(Backend::from_name("sse9")
        .unwrap_err()
        .to_string()
        .contains("unknown backend"));
    assert!(Backend::available().contains(&Backend::Scalar));
}
