//! The binary delta's reader on hostile bytes: the lookup decoder (as
//! given, and as a body compressed here so the parser sees the fuzzer's
//! bytes) and the part decoder (a reference and a frame from the input).
//! Every input is an error, a lookup that encodes back to itself, or a
//! part of exactly the length asked; never a panic, a hang or a huge
//! allocation.
#![no_main]

use chunkah::delta::format::{decompress_part, DeltaLookup, MAX_PART_BYTES};
use chunkah::digest::Digest;
use chunkah::layer::index::IndexLocation;
use libfuzzer_sys::fuzz_target;

fn located(bytes: &[u8], offset: u64) -> IndexLocation {
    IndexLocation {
        offset,
        length: bytes.len() as u64,
        digest: Digest::of(bytes),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut body = b"CHUNKAHD\x01".to_vec();
    body.extend_from_slice(data);
    let packed = zstd::bulk::compress(&body, 1).expect("compressing to memory");
    for bytes in [data, &packed[..]] {
        // Any offset: the parts must end where the lookup starts.
        let offset = data.first().map_or(0, |&b| u64::from(b));
        if let Ok(lookup) = DeltaLookup::decode(&located(bytes, offset), bytes, "fuzz") {
            let again = lookup.encode();
            let decoded = DeltaLookup::decode(&located(&again, offset), &again, "fuzz")
                .expect("an encoded lookup decodes");
            assert_eq!(decoded, lookup);
        }
    }
    // A part: the first byte splits reference from frame, the second says
    // how much content to expect.
    if data.len() > 2 {
        let split = usize::from(data[0]).min(data.len() - 2);
        let (reference, frame) = data[2..].split_at(split);
        let want = u64::from(data[1]) * 1000;
        if let Ok(out) = decompress_part(reference, frame, want, "fuzz") {
            assert_eq!(out.len() as u64, want);
        }
        assert!(decompress_part(reference, frame, MAX_PART_BYTES + 1, "fuzz").is_err());
    }
});
