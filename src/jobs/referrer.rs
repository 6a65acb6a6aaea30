//! Artifacts published beside an image (binary deltas, SBOMs): an OCI 1.1
//! manifest with the image as its `subject`, listed in the index of the
//! image's referrers (the referrers tag schema, see `store::referrers`).

use std::collections::BTreeMap;

use crate::error::Result;
use crate::oci::layout::LayoutWriter;
use crate::oci::read::LayoutReader;
use crate::oci::types::{Descriptor, Manifest, INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE};
use crate::store::merge_referrer;

/// The OCI empty descriptor's media type: an artifact with no config.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";

/// An artifact about an image, before it is written.
pub(crate) struct Artifact<'a> {
    /// Its `artifactType` (the delta's or the SBOM's media type).
    pub artifact_type: &'a str,
    /// Its blobs, already in the layout.
    pub layers: Vec<Descriptor>,
    /// The image it is about: its manifest's descriptor.
    pub subject: &'a Descriptor,
    /// The manifest's annotations (copied into its entry of the index).
    pub annotations: BTreeMap<String, String>,
    /// The annotations whose values, with the artifact type, say which
    /// earlier entry of the index this one replaces.
    pub same_annotations: &'a [&'a str],
}

/// Writes `artifact`'s manifest (with the empty config) into `layout` and
/// merges it into the index of referrers tagged `tag`, replacing an entry
/// with the same artifact type and the same values of its
/// `same_annotations`; the manifest's descriptor as listed.
pub(crate) fn list_artifact(
    layout: &LayoutWriter,
    tag: &str,
    artifact: Artifact<'_>,
) -> Result<Descriptor> {
    let config = layout.put_blob(EMPTY_MEDIA_TYPE, b"{}")?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: MANIFEST_MEDIA_TYPE.into(),
        config,
        layers: artifact.layers,
        artifact_type: Some(artifact.artifact_type.into()),
        subject: Some(Descriptor {
            media_type: artifact.subject.media_type.clone(),
            digest: artifact.subject.digest,
            size: artifact.subject.size,
            artifact_type: None,
            annotations: Default::default(),
            platform: None,
        }),
        annotations: artifact.annotations,
    };
    let manifest_json = serde_json::to_vec(&manifest).expect("a manifest serialises");
    let mut listed = layout.put_blob(MANIFEST_MEDIA_TYPE, &manifest_json)?;
    listed.artifact_type = manifest.artifact_type.clone();
    listed.annotations = manifest.annotations.clone();
    layout.update_tag(tag, |current| {
        let existing = match current {
            Some(desc) => Some(LayoutReader::open_layout(layout.root())?.json_blob(desc)?),
            None => None,
        };
        let index = merge_referrer(existing, listed.clone(), artifact.same_annotations);
        let index_json = serde_json::to_vec(&index).expect("an index serialises");
        layout.put_blob(INDEX_MEDIA_TYPE, &index_json)
    })?;
    Ok(listed)
}
