//! Golden vectors (testdata/golden/chunker.json): every backend reproduces them.

use chunkah::chunker::{golden_input, Algorithm, Backend, Chunker, ChunkerConfig};
use chunkah::ChunkId;
use serde_json::Value;

#[test]
fn every_backend_reproduces_the_golden_vectors() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/golden/chunker.json"
    ))
    .unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["schemaVersion"], 1);
    let vectors = doc["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 60, "only {} vectors", vectors.len());
    let mut checked = 0;
    for v in vectors {
        let n = |k: &str| v[k].as_u64().unwrap() as usize;
        let algorithm: Algorithm = v["algorithm"].as_str().unwrap().parse().unwrap();
        let config = ChunkerConfig::new(n("min"), n("avg"), n("max"), n("normalization") as u32)
            .unwrap()
            .with_algorithm(algorithm);
        let data = golden_input(v["seed"].as_u64().unwrap(), n("length"));
        let expected: Vec<(u64, u64, String)> = v["chunks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c[0].as_u64().unwrap(),
                    c[1].as_u64().unwrap(),
                    c[2].as_str().unwrap().to_string(),
                )
            })
            .collect();
        for backend in Backend::available() {
            let got: Vec<(u64, u64, String)> = Chunker::new(config, backend)
                .unwrap()
                .chunks(&data)
                .iter()
                .map(|c| {
                    let bytes = &data[c.offset as usize..(c.offset + c.length) as usize];
                    (c.offset, c.length, ChunkId::of(bytes).to_string())
                })
                .collect();
            assert_eq!(got, expected, "{backend} on {v:?}");
            checked += 1;
        }
    }
    assert!(checked >= vectors.len());
}
