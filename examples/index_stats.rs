//! Prints what the frames of an image's seekable layers hold: bytes by frame
//! kind, compressed and not, and the index sizes.
//!
//! `cargo run --release --example index_stats -- oci:DIR[:TAG]`

use chunkah::layer::index::FrameKind;
use chunkah::store::view::read_index;
use chunkah::store::{ImageReader, ImageRef};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = std::env::args()
        .nth(1)
        .ok_or("usage: index_stats oci:DIR[:TAG]")?;
    let reader = ImageReader::open(&ImageRef::parse(&arg)?)?;
    let image = reader.image(chunkah::oci::types::host_architecture())?;
    let mut totals = std::collections::BTreeMap::<&str, (u64, u64, u64)>::new();
    let (mut index_bytes, mut small_files, mut large_files) = (0u64, 0usize, 0usize);
    for layer in &image.manifest.layers {
        // The index's location comes from the layer's annotations; its
        // bytes are checked against the annotated digest.
        let Some(chunkah::store::view::ReadIndex { range, index, .. }) =
            read_index(&reader, layer)?
        else {
            continue;
        };
        index_bytes += range.length;
        for f in &index.frames {
            let k = match f.kind {
                FrameKind::Entries => "entries",
                FrameKind::Chunk => "chunk",
                FrameKind::Trailer => "trailer",
            };
            let t = totals.entry(k).or_default();
            t.0 += 1;
            t.1 += f.tar_len;
            t.2 += f.blob_len;
        }
        small_files += index.files.iter().filter(|f| f.frame_count == 0).count();
        large_files += index.files.iter().filter(|f| f.frame_count > 0).count();
    }
    for (k, (n, tar, blob)) in totals {
        println!(
            "{k:8} {n:7} frames {tar:12} tar bytes {blob:11} blob bytes ({:.3})",
            blob as f64 / tar as f64
        );
    }
    println!("index    {index_bytes} bytes; files: {small_files} small, {large_files} large");
    Ok(())
}
