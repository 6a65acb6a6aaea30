//! Arbitrary bytes and configuration: every backend agrees with the scalar
//! kernel and the `fastcdc` crate, and nothing panics.
#![no_main]

use chunkah::chunker::{Algorithm, Backend, Chunk, Chunker, ChunkerConfig};
use fastcdc::v2020::{FastCDC, Normalization};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    if input.len() < 8 {
        return;
    }
    let (head, data) = input.split_at(8);
    // Small sizes so that short inputs hold many chunks; invalid ones must be errors.
    let min = 2 * u16::from_le_bytes([head[0], head[1]]) as usize;
    let avg = 2 * u16::from_le_bytes([head[2], head[3]]) as usize;
    let max = 2 * u16::from_le_bytes([head[4], head[5]]) as usize;
    let level = u32::from(head[6] % 5);
    let skip = (head[7] % 64) as usize;
    let data = &data[skip.min(data.len())..];
    let Ok(config) = ChunkerConfig::new(min, avg, max, level) else {
        return;
    };
    let norm = [Normalization::Level0, Normalization::Level1, Normalization::Level2, Normalization::Level3];
    let oracle: Vec<Chunk> = FastCDC::with_level(data, min, avg, max, norm[level as usize])
        .map(|c| Chunk { offset: c.offset as u64, length: c.length as u64 })
        .collect();
    for algorithm in [Algorithm::FastCdc, Algorithm::Vector] {
        let config = config.with_algorithm(algorithm);
        let reference = Chunker::new(config, Backend::Scalar).unwrap().chunks(data);
        if algorithm == Algorithm::FastCdc {
            assert_eq!(reference, oracle);
        }
        assert_eq!(reference.iter().map(|c| c.length).sum::<u64>(), data.len() as u64);
        for backend in Backend::available() {
            assert_eq!(Chunker::new(config, backend).unwrap().chunks(data), reference, "{backend}");
        }
    }
});
