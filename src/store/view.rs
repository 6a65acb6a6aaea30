//! An image as planning and deltas see it: its manifest, config and the
//! chunk index of every seekable layer, and nothing of the layer bodies.
//!
//! [`OpenImage`] is the image opened once: the reader that reads its blobs,
//! the manifest and config it resolved to, and its [`ImageView`].

use std::collections::HashMap;

use serde::Serialize;

use super::{ImageReader, ImageRef, StoreConfig};
use crate::error::Result;
use crate::layer::index::{ChunkIndex, FrameKey, IndexLocation};
use crate::oci::read::Image;
use crate::oci::types::Descriptor;

/// One layer as planning sees it.
#[derive(Clone, Debug)]
pub struct LayerView {
    /// The layer's descriptor.
    pub descriptor: Descriptor,
    /// Its chunk index and where that is in the blob, if it has one.
    pub index: Option<(IndexRange, ChunkIndex)>,
}

/// Where a layer's chunk index is in its blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct IndexRange {
    /// Offset of the index's first byte in the blob.
    pub offset: u64,
    /// The index's length in bytes.
    pub length: u64,
}

impl From<&IndexLocation> for IndexRange {
    fn from(location: &IndexLocation) -> Self {
        IndexRange {
            offset: location.offset,
            length: location.length,
        }
    }
}

/// An image as planning sees it.
#[derive(Clone, Debug)]
pub struct ImageView {
    /// The manifest's descriptor.
    pub manifest: Descriptor,
    /// The config's descriptor.
    pub config: Descriptor,
    /// The layers, in manifest order.
    pub layers: Vec<LayerView>,
}

/// Where a frame of an image is: its layer (position in the manifest) and
/// its offset in that layer's blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameAt {
    /// The layer's position in the manifest.
    pub layer: usize,
    /// The frame's offset in the layer blob.
    pub offset: u64,
}

impl ImageView {
    /// Reads the image's manifest, config and chunk indexes (nothing else
    /// of the layers), checking every index against the digest its
    /// annotation gives.
    pub fn load(reader: &ImageReader, image: &Image) -> Result<ImageView> {
        let layers = image
            .manifest
            .layers
            .iter()
            .map(|d| {
                Ok(LayerView {
                    descriptor: d.clone(),
                    index: read_index(reader, d)?.map(|read| (read.range, read.index)),
                })
            })
            .collect::<Result<_>>()?;
        Ok(ImageView {
            manifest: image.descriptor.clone(),
            config: image.manifest.config.clone(),
            layers,
        })
    }

    /// Every frame of the indexed layers by its key, the first of equal
    /// ones: where a frame with the same compressed bytes can be read.
    pub fn frames_by_key(&self) -> HashMap<FrameKey, FrameAt> {
        let mut map = HashMap::new();
        for (layer, l) in self.layers.iter().enumerate() {
            if let Some((_, index)) = &l.index {
                for f in &index.frames {
                    map.entry(index.key(f)).or_insert(FrameAt {
                        layer,
                        offset: f.blob_offset,
                    });
                }
            }
        }
        map
    }
}

/// An image opened for planning: its reader, the manifest and config the
/// reference resolved to, and its view.
pub struct OpenImage {
    /// Reads the image's blobs.
    pub reader: ImageReader,
    /// Its manifest and config.
    pub image: Image,
    /// Its manifest, config and chunk indexes as planning sees them.
    pub view: ImageView,
}

impl OpenImage {
    /// Opens `reference`, resolves it to the image for `architecture` (in
    /// an index) and reads its chunk indexes.
    pub fn open(reference: &ImageRef, store: &StoreConfig, architecture: &str) -> Result<Self> {
        let reader = ImageReader::open_with(reference, store)?;
        let image = reader.image(architecture)?;
        let view = ImageView::load(&reader, &image)?;
        Ok(OpenImage {
            reader,
            image,
            view,
        })
    }
}

/// A layer's chunk index as read from its blob.
pub struct ReadIndex {
    /// Where it is in the blob.
    pub range: IndexRange,
    /// It, decoded (its digest and frames checked).
    pub index: ChunkIndex,
    /// Its bytes as read.
    pub bytes: Vec<u8>,
}

/// The chunk index of the layer `d` of the image `reader` reads, if its
/// annotations say it has one, read as one range.
pub fn read_index(reader: &ImageReader, d: &Descriptor) -> Result<Option<ReadIndex>> {
    let what = format!("{} layer {}", reader.reference(), d.digest);
    let Some(location) = IndexLocation::from_annotations(&d.annotations, d.size, &what)? else {
        return Ok(None);
    };
    let bytes = reader.read_range(&d.digest, d.size, location.offset, location.length)?;
    let index = location.decode(&bytes, &format!("{what} chunk index"))?;
    Ok(Some(ReadIndex {
        range: IndexRange::from(&location),
        index,
        bytes,
    }))
}
