//! Pushing an image of a local OCI layout to a registry: blobs first (those
//! the repository has are not sent again), the manifest last, so the tag
//! never names an incomplete image.

use serde::Serialize;

use super::{Client, PushOutcome, Target};
use crate::error::{Error, Result};
use crate::oci::read::ImageReader;
use crate::oci::types::host_architecture;
use crate::oci::ImageRef;

/// What a push did.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PushReport {
    /// Blobs uploaded.
    pub uploaded: usize,
    /// Blobs the repository had already.
    pub skipped: usize,
    /// Bytes of blobs uploaded.
    pub uploaded_bytes: u64,
}

/// Pushes the image `source` (a layout or archive) to `client` under `target`.
pub fn push_image(source: &ImageRef, client: &Client, target: &Target) -> Result<PushReport> {
    let reader = ImageReader::open(source)?;
    let (desc, manifest, bytes) = reader.manifest(host_architecture())?;
    let mut report = PushReport {
        uploaded: 0,
        skipped: 0,
        uploaded_bytes: 0,
    };
    for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
        let b = reader.blob(&blob.digest, blob.size)?;
        let mut region = std::io::Cursor::new(Vec::new());
        let outcome = if b.offset == 0 {
            let mut file = b.file.try_clone().map_err(|e| Error::io(&b.path, e))?;
            client.put_blob(&blob.digest, blob.size, &mut file)?
        } else {
            // A member of an archive: read it out first.
            std::io::copy(&mut b.reader(), region.get_mut()).map_err(|e| Error::io(&b.path, e))?;
            client.put_blob(&blob.digest, blob.size, &mut region)?
        };
        match outcome {
            PushOutcome::Skipped => report.skipped += 1,
            PushOutcome::Uploaded => {
                report.uploaded += 1;
                report.uploaded_bytes += blob.size;
            }
        }
    }
    client.put_manifest(target, &desc.media_type, &bytes)?;
    Ok(report)
}
