//! An original cover without its metadata, removed losslessly: the pixels' bytes are kept as
//! sent, and so is what says how to show them (the ICC colour profile, PNG's gamma and
//! chromaticities, JPEG's JFIF and Adobe segments). EXIF (camera, place, time), XMP, IPTC,
//! comments and text chunks go. The EXIF orientation is written back alone, so the original
//! still shows upright.

use super::CoverError;
use bytes::Bytes;
use image::metadata::Orientation;
use img_parts::{DynImage, ImageEXIF};

/// JPEG segments that carry metadata: APP1 (EXIF, XMP), APP13 (Photoshop, IPTC), comments.
const JPEG_METADATA: [u8; 3] = [0xE1, 0xED, 0xFE];

/// PNG chunks that carry metadata: EXIF, text of three kinds (XMP is an `iTXt`), the time.
const PNG_METADATA: [[u8; 4]; 5] = [*b"eXIf", *b"tEXt", *b"zTXt", *b"iTXt", *b"tIME"];

/// The original `bytes` (a JPEG, PNG or WebP already decoded) without its metadata, with
/// `orientation` as its only EXIF field when it turns the image.
///
/// A JPEG must also end: its decoder shows a truncated one with the missing part grey, so the
/// end-of-image marker is looked for after the scan's header, where it cannot be confused with
/// the end of an EXIF thumbnail.
pub fn strip(bytes: Bytes, orientation: Orientation) -> Result<Bytes, CoverError> {
    let total = bytes.len();
    let mut image = DynImage::from_bytes(bytes.clone())
        .map_err(|e| CoverError::Malformed(format!("its structure cannot be read: {e}")))?
        .ok_or_else(|| CoverError::Malformed("it is not a JPEG, PNG or WebP image".into()))?;
    match &mut image {
        DynImage::Jpeg(jpeg) => {
            // The scan's data runs to the end of the file; inside it 0xFF is always stuffed,
            // so 0xFF 0xD9 is the end-of-image marker.
            let scan = jpeg
                .segments()
                .iter()
                .find(|segment| segment.has_entropy())
                .map_or(0, |segment| segment.len_with_entropy() - segment.len());
            if memchr::memmem::find(&bytes[total - scan.min(total)..], b"\xFF\xD9").is_none() {
                return Err(CoverError::Malformed(
                    "the JPEG is truncated: it has no end-of-image marker".into(),
                ));
            }
            // First through set_exif, which keeps a multi-picture index's offsets right.
            jpeg.set_exif(None);
            for marker in JPEG_METADATA {
                jpeg.remove_segments_by_marker(marker);
            }
        }
        DynImage::Png(png) => {
            for kind in PNG_METADATA {
                png.remove_chunks_by_type(kind);
            }
        }
        // set_exif below also clears the header's flags of the chunks removed.
        DynImage::WebP(webp) => webp.remove_chunks_by_id(*b"XMP "),
    }
    image.set_exif(exif_of(orientation));
    Ok(image.encoder().bytes())
}

/// The smallest EXIF that says `orientation`: a big-endian TIFF header and one IFD holding
/// one entry, or none when the image is shown as stored.
fn exif_of(orientation: Orientation) -> Option<Bytes> {
    if orientation == Orientation::NoTransforms {
        return None;
    }
    let mut exif = Vec::with_capacity(26);
    exif.extend_from_slice(b"MM\0\x2a\0\0\0\x08"); // big-endian, IFD at 8
    exif.extend_from_slice(&1u16.to_be_bytes()); // one entry:
    exif.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation,
    exif.extend_from_slice(&3u16.to_be_bytes()); // a SHORT,
    exif.extend_from_slice(&1u32.to_be_bytes()); // one of them,
    exif.extend_from_slice(&u16::from(orientation.to_exif()).to_be_bytes());
    exif.extend_from_slice(&[0, 0]); // padded to four bytes
    exif.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    Some(exif.into())
}
