//! The chunk index decoder on hostile bytes: every input is an error or an
//! index that encodes back to an index that decodes to itself; never a
//! panic, a hang or a huge allocation.
#![no_main]

use chunkah::layer::index::{ChunkIndex, SKIPPABLE_MAGIC};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let name = "fuzz";
    // As given, and wrapped in a correct skippable-frame header so the
    // decompression and the body parser are reached too.
    let mut framed = SKIPPABLE_MAGIC.to_le_bytes().to_vec();
    framed.extend_from_slice(&(data.len() as u32).to_le_bytes());
    framed.extend_from_slice(data);
    // A body compressed here: the parser sees the fuzzer's bytes directly.
    let mut body = b"CHUNKAHI\x01".to_vec();
    body.extend_from_slice(data);
    let packed = zstd::bulk::compress(&body, 1).expect("compressing to memory");
    let mut parsed = SKIPPABLE_MAGIC.to_le_bytes().to_vec();
    parsed.extend_from_slice(&(packed.len() as u32).to_le_bytes());
    parsed.extend_from_slice(&packed);
    for bytes in [data, &framed[..], &parsed[..]] {
        if let Ok(index) = ChunkIndex::decode(bytes, name) {
            let again =
                ChunkIndex::decode(&index.encode(), name).expect("an encoded index decodes");
            assert_eq!(again, index);
        }
    }
});
