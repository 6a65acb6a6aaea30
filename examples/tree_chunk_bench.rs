//! Times the phases of `chunkah diff dir:OLD dir:NEW` on one tree: the walk,
//! and the chunk-and-hash pass over every file's content (the figure the
//! speed goal is about), median of N runs.
//!
//! `cargo run --release --example tree_chunk_bench -- TREE [RUNS]`

use std::time::Instant;

use chunkah::chunker::ChunkerConfig;
use chunkah::update::tree::chunk_tree;
use chunkah::walk::walk_dir;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::env::args()
        .nth(1)
        .ok_or("usage: tree_chunk_bench TREE [RUNS]")?;
    let runs: usize = std::env::args().nth(2).map_or(Ok(7), |r| r.parse())?;
    let root = std::path::Path::new(&root);
    let (mut walks, mut chunks) = (Vec::new(), Vec::new());
    let mut bytes = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let tree = walk_dir(root)?;
        walks.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let c = chunk_tree(root, &tree, ChunkerConfig::default())?;
        chunks.push(t.elapsed().as_secs_f64());
        bytes = c.iter().flatten().map(|c| c.chunk.length).sum::<u64>();
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let (w, c) = (median(&mut walks), median(&mut chunks));
    println!(
        "{}: {} bytes of content, {} threads; walk {:.3} s; chunk+hash {:.3} s = {:.2} GB/s; both {:.2} GB/s",
        root.display(),
        bytes,
        rayon::current_num_threads(),
        w,
        c,
        bytes as f64 / c / 1e9,
        bytes as f64 / (w + c) / 1e9
    );
    Ok(())
}
