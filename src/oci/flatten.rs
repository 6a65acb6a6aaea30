//! An image's layers applied in order: the root file system it holds.
//!
//! Each layer is read once, as a stream: its blob digest and its diff_id
//! (the digest of the uncompressed tar, from the config) are checked, and a
//! mismatch is an error. Uncompressed layers are read in place; compressed
//! ones are decompressed into an anonymous scratch file (no name, gone when
//! the content is dropped, even after a crash), where the content of their
//! files is then read from.

use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use super::read::{Blob, Image};
use super::types::Descriptor;
use crate::digest::HashingReader;
use crate::error::{Error, Result};
use crate::io::{anonymous_file, Decoder, StreamCompression, Tee};
use crate::walk::{ContentFile, TarContent, TarMerger, Tree};

/// Whether a layer media type is a file system layer chunkah can read.
fn is_filesystem_layer(media_type: &str) -> bool {
    media_type.starts_with("application/vnd.oci.image.layer.v1.tar")
        || media_type.starts_with("application/vnd.docker.image.rootfs.diff.tar")
        || media_type.starts_with("application/vnd.docker.image.rootfs.foreign.diff.tar")
}

/// The root file system of `image` (called `reference` in errors), each
/// layer's bytes obtained from `blob` one after the other; compressed layers
/// are decompressed into scratch files in `scratch_dir`. Stops with
/// [`Error::Cancelled`] once `cancel` is set.
pub fn flatten(
    reference: &str,
    image: &Image,
    blob: impl Fn(&Descriptor) -> Result<Blob>,
    scratch_dir: &Path,
    cancel: &AtomicBool,
) -> Result<(Tree, TarContent)> {
    let mut merger = TarMerger::new();
    for (i, (desc, diff_id)) in image
        .manifest
        .layers
        .iter()
        .zip(&image.config.rootfs.diff_ids)
        .enumerate()
    {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        let what = format!("{reference} layer {} ({})", i + 1, desc.digest);
        if !is_filesystem_layer(&desc.media_type) {
            return Err(Error::unsupported(
                &what,
                format!(
                    "has media type {:?}, not a file system layer",
                    desc.media_type
                ),
            ));
        }
        let blob = blob(desc)?;
        let mut head = [0u8; 4];
        let n = std::io::copy(
            &mut blob.reader().take(4),
            &mut std::io::Cursor::new(&mut head[..]),
        )
        .map_err(|e| Error::io(&blob.path, e))? as usize;
        let compression = StreamCompression::sniff(&head[..n]);
        let io = |e: std::io::Error| Error::malformed(&what, format!("reading it: {e}"));
        let (blob_digest, blob_size, tar_digest) = if compression == StreamCompression::None {
            let content = ContentFile {
                file: blob
                    .file
                    .try_clone()
                    .map_err(|e| Error::io(&blob.path, e))?,
                path: blob.path.clone(),
                name: what.to_string(),
            };
            let mut stream = BufReader::with_capacity(1 << 18, HashingReader::new(blob.reader()));
            merger.add_layer(&mut stream, content, blob.offset, true)?;
            std::io::copy(&mut stream, &mut std::io::sink()).map_err(io)?;
            let (digest, size) = stream.into_inner().finish();
            (digest, size, digest)
        } else {
            let scratch = anonymous_file(scratch_dir)?;
            let mut copy = scratch.try_clone().map_err(|e| Error::io(scratch_dir, e))?;
            let compressed = BufReader::with_capacity(1 << 18, HashingReader::new(blob.reader()));
            let decoder = Decoder::new(compression, compressed).map_err(io)?;
            let content = ContentFile {
                file: scratch,
                path: scratch_dir.to_path_buf(),
                name: what.to_string(),
            };
            let mut stream = BufReader::with_capacity(
                1 << 18,
                Tee {
                    inner: HashingReader::new(decoder),
                    copy: &mut copy,
                },
            );
            merger.add_layer(&mut stream, content, 0, true)?;
            std::io::copy(&mut stream, &mut std::io::sink()).map_err(io)?;
            let (decoder, tar_digest, _) = stream.into_inner().inner.into_parts();
            let mut compressed = decoder.into_inner();
            // Whatever follows the compressed stream is part of the blob too.
            std::io::copy(&mut compressed, &mut std::io::sink()).map_err(io)?;
            let (digest, size) = compressed.into_inner().finish();
            (digest, size, tar_digest)
        };
        if blob_size != desc.size || blob_digest != desc.digest {
            return Err(Error::digest_mismatch(
                format!("{what}: its content ({blob_size} bytes)"),
                desc.digest,
                blob_digest,
            ));
        }
        if tar_digest != *diff_id {
            return Err(Error::digest_mismatch(
                format!("{what}: its uncompressed content (the config's diff_id)"),
                diff_id,
                tar_digest,
            ));
        }
    }
    merger.finish(Path::new(reference))
}
