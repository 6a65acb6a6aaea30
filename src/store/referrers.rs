//! Artifacts that refer to a manifest (OCI 1.1 `subject`), found by the
//! referrers tag schema: an image index tagged `sha256-<hex>` of the
//! subject's digest lists them, with their artifact type and annotations.
//! Distribution 2.8 (Debian's `docker-registry`) has no referrers API, and
//! a layout or an archive has none, so the tag schema is used everywhere.

#[cfg(feature = "registry")]
use std::sync::atomic::Ordering;

use super::reader::{Backend, ImageReader};
use crate::digest::Digest;
#[cfg(feature = "registry")]
use crate::error::Error;
use crate::error::Result;
use crate::oci::types::{Descriptor, Index, Manifest, INDEX_MEDIA_TYPE};

/// The tag the referrers tag schema gives the index of `subject`'s
/// referrers.
pub fn referrers_tag(subject: &Digest) -> String {
    format!("sha256-{}", subject.hex())
}

/// `index` with `entry` added: an entry with the same digest, or with the
/// same artifact type and the same value of each of `same_annotations`, is
/// replaced; the others are kept in their order.
pub fn merge_referrer(index: Option<Index>, entry: Descriptor, same_annotations: &[&str]) -> Index {
    let mut index = index.unwrap_or_else(|| Index {
        schema_version: 2,
        media_type: Some(INDEX_MEDIA_TYPE.to_string()),
        manifests: Vec::new(),
        annotations: Default::default(),
    });
    index
        .manifests
        .retain(|m| !same_referrer(m, &entry, same_annotations));
    index.manifests.push(entry);
    index
}

/// Whether `a` and `b` stand for the same referrer: the same digest, or the
/// same artifact type and the same value of each of `same_annotations`.
pub(crate) fn same_referrer(a: &Descriptor, b: &Descriptor, same_annotations: &[&str]) -> bool {
    a.digest == b.digest
        || (a.artifact_type == b.artifact_type
            && same_annotations
                .iter()
                .all(|k| a.annotations.get(*k) == b.annotations.get(*k)))
}

impl ImageReader {
    /// The index of the referrers of `subject` (the manifest digest), by
    /// the tag schema; `None` where there is none.
    pub fn referrers(&self, subject: &Digest) -> Result<Option<Index>> {
        let tag = referrers_tag(subject);
        match &self.backend {
            Backend::Local(l) => match l.tagged(&tag)? {
                Some(desc) => l.json_blob(&desc).map(Some),
                None => Ok(None),
            },
            #[cfg(feature = "registry")]
            Backend::Registry {
                client, bytes_read, ..
            } => {
                let found = registry_index(client, &crate::registry::Target::Tag(tag))?;
                Ok(found.map(|(index, size)| {
                    bytes_read.fetch_add(size, Ordering::Relaxed);
                    index
                }))
            }
        }
    }

    /// The manifest `desc` names (an artifact's, listed by
    /// [`ImageReader::referrers`]), checked against its digest, and its
    /// bytes.
    pub fn manifest_at(&self, desc: &Descriptor) -> Result<(Manifest, Vec<u8>)> {
        match &self.backend {
            Backend::Local(l) => l.json_blob_bytes(desc),
            #[cfg(feature = "registry")]
            Backend::Registry {
                client, bytes_read, ..
            } => {
                let m = client.get_manifest(&crate::registry::Target::Digest(desc.digest))?;
                bytes_read.fetch_add(m.size, Ordering::Relaxed);
                let manifest = serde_json::from_slice(&m.bytes).map_err(|e| {
                    Error::malformed(
                        format!("{} manifest {}", self.reference(), desc.digest),
                        format!("bad JSON: {e}"),
                    )
                })?;
                Ok((manifest, m.bytes))
            }
        }
    }
}

/// The index of referrers a registry has under `tag` and its size, `None`
/// where it has none.
#[cfg(feature = "registry")]
pub(crate) fn registry_index(
    client: &crate::registry::Client,
    tag: &crate::registry::Target,
) -> Result<Option<(Index, u64)>> {
    let m = match client.get_manifest(tag) {
        Ok(m) => m,
        Err(Error::Registry {
            status: Some(404), ..
        }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let index = serde_json::from_slice(&m.bytes).map_err(|e| {
        Error::malformed(
            client.url(&format!("manifests/{}", tag.as_url_part())),
            format!("bad JSON in the index of referrers: {e}"),
        )
    })?;
    Ok(Some((index, m.size)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, base: &str) -> Descriptor {
        Descriptor {
            media_type: crate::oci::types::MANIFEST_MEDIA_TYPE.into(),
            digest: Digest::of(name.as_bytes()),
            size: 1,
            artifact_type: Some("t".into()),
            annotations: [("base".to_string(), base.to_string())].into(),
            platform: None,
        }
    }

    #[test]
    fn merging_replaces_the_entry_for_the_same_base_only() {
        let i = merge_referrer(None, entry("a", "1"), &["base"]);
        let i = merge_referrer(Some(i), entry("b", "2"), &["base"]);
        let i = merge_referrer(Some(i), entry("c", "1"), &["base"]);
        let names: Vec<_> = i.manifests.iter().map(|m| m.digest).collect();
        assert_eq!(names, [Digest::of(b"b"), Digest::of(b"c")]);
        // The same digest again: listed once.
        let i = merge_referrer(Some(i), entry("c", "1"), &["base"]);
        assert_eq!(i.manifests.len(), 2);
        assert_eq!(
            referrers_tag(&Digest::of(b"")),
            "sha256-e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
