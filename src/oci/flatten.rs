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
use crate::digest::{Digest, HashingReader};
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
        let read = match sniff(&blob)? {
            StreamCompression::None => add_plain_layer(&mut merger, &what, &blob)?,
            compression => {
                add_compressed_layer(&mut merger, &what, &blob, compression, scratch_dir)?
            }
        };
        read.check(&what, desc, diff_id)?;
    }
    merger.finish(Path::new(reference))
}

/// How `blob` is compressed, from its first bytes.
fn sniff(blob: &Blob) -> Result<StreamCompression> {
    let mut head = [0u8; 4];
    let n = std::io::copy(
        &mut blob.reader().take(4),
        &mut std::io::Cursor::new(&mut head[..]),
    )
    .map_err(|e| Error::io(&blob.path, e))? as usize;
    Ok(StreamCompression::sniff(&head[..n]))
}

/// What reading a layer found: its blob's digest and size, and the digest
/// of its tar.
struct ReadLayer {
    blob_digest: Digest,
    blob_size: u64,
    tar_digest: Digest,
}

impl ReadLayer {
    /// An error unless the blob is the one `desc` names and the tar the
    /// one the config's `diff_id` names.
    fn check(&self, what: &str, desc: &Descriptor, diff_id: &Digest) -> Result<()> {
        if self.blob_size != desc.size || self.blob_digest != desc.digest {
            return Err(Error::digest_mismatch(
                format!("{what}: its content ({} bytes)", self.blob_size),
                desc.digest,
                self.blob_digest,
            ));
        }
        if self.tar_digest != *diff_id {
            return Err(Error::digest_mismatch(
                format!("{what}: its uncompressed content (the config's diff_id)"),
                diff_id,
                self.tar_digest,
            ));
        }
        Ok(())
    }
}

/// The error of reading the layer `what`.
fn read_error(what: &str) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::malformed(what, format!("reading it: {e}"))
}

/// Adds an uncompressed layer, whose files' content is read in place.
fn add_plain_layer(merger: &mut TarMerger, what: &str, blob: &Blob) -> Result<ReadLayer> {
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
    std::io::copy(&mut stream, &mut std::io::sink()).map_err(read_error(what))?;
    let (digest, size) = stream.into_inner().finish();
    Ok(ReadLayer {
        blob_digest: digest,
        blob_size: size,
        tar_digest: digest,
    })
}

/// Adds a compressed layer, decompressed into an anonymous scratch file in
/// `scratch_dir` where its files' content is then read from.
fn add_compressed_layer(
    merger: &mut TarMerger,
    what: &str,
    blob: &Blob,
    compression: StreamCompression,
    scratch_dir: &Path,
) -> Result<ReadLayer> {
    let io = read_error(what);
    let scratch = anonymous_file(scratch_dir)?;
    let mut copy = scratch.try_clone().map_err(|e| Error::io(scratch_dir, e))?;
    let compressed = BufReader::with_capacity(1 << 18, HashingReader::new(blob.reader()));
    let decoder = Decoder::new(compression, compressed).map_err(&io)?;
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
    std::io::copy(&mut stream, &mut std::io::sink()).map_err(&io)?;
    let (decoder, tar_digest, _) = stream.into_inner().inner.into_parts();
    let mut compressed = decoder.into_inner();
    // Whatever follows the compressed stream is part of the blob too.
    std::io::copy(&mut compressed, &mut std::io::sink()).map_err(&io)?;
    let (blob_digest, blob_size) = compressed.into_inner().finish();
    Ok(ReadLayer {
        blob_digest,
        blob_size,
        tar_digest,
    })
}
