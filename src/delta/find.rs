//! Finding the delta from OLD to NEW where NEW is published: NEW's
//! referrers (by the tag schema), the entry whose base is OLD, its
//! manifest, its lookup. Anything wrong with them is a reason not to use
//! the delta, never an error of the job: the client then fetches ranges.

use super::format::{DeltaLookup, BASE_ANNOTATION, DELTA_MEDIA_TYPE, LOOKUP_KEYS};
use crate::digest::Digest;
use crate::error::Result;
use crate::layer::index::IndexLocation;
use crate::oci::types::{Descriptor, Manifest};
use crate::store::ImageReader;

/// A delta found for a pair.
#[derive(Clone, Debug)]
pub struct FoundDelta {
    /// The delta artifact's manifest digest.
    pub manifest: Digest,
    /// The delta blob's descriptor.
    pub blob: Descriptor,
    /// Its lookup.
    pub lookup: DeltaLookup,
    /// Bytes read to find it: the referrers index, the artifact manifest,
    /// the lookup.
    pub bytes_read: u64,
    /// Requests made for them.
    pub requests: u64,
}

/// What looking for a delta gave.
#[derive(Clone, Debug)]
pub enum Lookup {
    /// A delta for this pair, its lookup read and checked.
    Found(Box<FoundDelta>),
    /// NEW lists no delta from OLD; `bytes_read` and `requests` are what
    /// asking cost.
    None {
        /// Bytes read.
        bytes_read: u64,
        /// Requests made.
        requests: u64,
    },
    /// A delta is listed but cannot be used: why (the client fetches
    /// ranges instead).
    Unusable {
        /// Why.
        reason: String,
        /// Bytes read.
        bytes_read: u64,
        /// Requests made.
        requests: u64,
    },
}

/// Looks in `source` for a delta from the manifest `old` to the manifest
/// `new`.
pub fn find(source: &ImageReader, new: &Digest, old: &Digest) -> Lookup {
    let before = source.bytes_read();
    let mut search = Search {
        source,
        new,
        old,
        requests: 1,
    };
    let outcome = search.run();
    let bytes_read = source.bytes_read() - before;
    let requests = search.requests;
    match outcome {
        Ok(Ok(Some(mut found))) => {
            found.bytes_read = bytes_read;
            found.requests = requests;
            Lookup::Found(Box::new(found))
        }
        Ok(Ok(None)) => Lookup::None {
            bytes_read,
            requests,
        },
        Ok(Err(reason)) => Lookup::Unusable {
            reason,
            bytes_read,
            requests,
        },
        Err(e) => Lookup::Unusable {
            reason: error_chain(&e),
            bytes_read,
            requests,
        },
    }
}

/// `e` and its causes, one after the other.
fn error_chain(e: &crate::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    text
}

/// A delta that is not usable, and why; or one that is, or none.
type Usable<T> = std::result::Result<T, String>;

/// One search for the delta from `old` to `new`, counting its requests.
struct Search<'a> {
    source: &'a ImageReader,
    new: &'a Digest,
    old: &'a Digest,
    requests: u64,
}

impl Search<'_> {
    /// NEW's referrers, the entry for a delta from OLD, its manifest (checked
    /// to be such a delta) and its lookup.
    fn run(&mut self) -> Result<Usable<Option<FoundDelta>>> {
        let Some(index) = self.source.referrers(self.new)? else {
            return Ok(Ok(None));
        };
        let old_text = self.old.to_string();
        let Some(entry) = index.manifests.iter().find(|m| {
            m.artifact_type.as_deref() == Some(DELTA_MEDIA_TYPE)
                && m.annotations.get(BASE_ANNOTATION) == Some(&old_text)
        }) else {
            return Ok(Ok(None));
        };
        self.requests += 1;
        let (manifest, _): (Manifest, _) = self.source.manifest_at(entry)?;
        let what = format!("{} delta {}", self.source.reference(), entry.digest);
        let blob = match self.delta_blob(&manifest, &what) {
            Ok(blob) => blob,
            Err(reason) => return Ok(Err(reason)),
        };
        Ok(self.read_lookup(blob, &what)?.map(|lookup| {
            Some(FoundDelta {
                manifest: entry.digest,
                blob: blob.clone(),
                lookup,
                bytes_read: 0,
                requests: 0,
            })
        }))
    }

    /// The delta blob of the artifact `manifest`, once the manifest is
    /// checked to be a delta from OLD to NEW.
    fn delta_blob<'m>(&self, manifest: &'m Manifest, what: &str) -> Usable<&'m Descriptor> {
        let (old, new) = (self.old, self.new);
        if manifest.artifact_type.as_deref() != Some(DELTA_MEDIA_TYPE)
            || manifest.subject.as_ref().map(|s| s.digest) != Some(*new)
            || manifest.annotations.get(BASE_ANNOTATION) != Some(&old.to_string())
        {
            return Err(format!(
                "{what}: its manifest is not a delta from {old} to {new}"
            ));
        }
        let [blob] = manifest.layers.as_slice() else {
            return Err(format!("{what}: not one delta blob"));
        };
        if blob.media_type != DELTA_MEDIA_TYPE {
            return Err(format!("{what}: a blob of type {}", blob.media_type));
        }
        Ok(blob)
    }

    /// The lookup at the end of `blob`, checked to be for OLD to NEW.
    fn read_lookup(&mut self, blob: &Descriptor, what: &str) -> Result<Usable<DeltaLookup>> {
        let Some(location) =
            IndexLocation::from_annotations_as(&LOOKUP_KEYS, &blob.annotations, blob.size, what)?
        else {
            return Ok(Err(format!("{what}: its blob has no lookup annotations")));
        };
        self.requests += 1;
        let bytes =
            self.source
                .read_range(&blob.digest, blob.size, location.offset, location.length)?;
        let lookup = DeltaLookup::decode(&location, &bytes, &format!("{what} lookup"))?;
        if lookup.base != *self.old || lookup.target != *self.new {
            return Ok(Err(format!(
                "{what}: its lookup is for {} to {}",
                lookup.base, lookup.target
            )));
        }
        Ok(Ok(lookup))
    }
}
