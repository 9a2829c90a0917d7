//! Cover images: what an upload must be, the sizes made from it, and where both are kept.
//!
//! An upload is decoded under limits (at most [`MAX_PIXELS`], refused from its header before
//! any pixel is decoded; at most [`MAX_DECODE_BYTES`] of decoded pixels), turned upright from
//! its EXIF orientation, and resized to every [`Variant`]: each [`Size`] at 1× and 2×, as lossy
//! WebP (BENCHMARKS.md, "Covers"). The original is kept as sent, minus its metadata
//! ([`metadata`]). The work is CPU-bound: [`run`] puts it on the blocking pool, at most
//! [`CONCURRENT_JOBS`] at once, so the memory it takes stays bounded.
//!
//! Keys: an uploaded cover lives in a folder named after its content,
//! `covers/{id}/{hash}/original.{ext}`, beside its sizes `covers/{id}/{hash}/{size}@{n}x.webp`.
//! The game's `cover_image` therefore names the content, and so does every URL made from it
//! (`?v={hash}`): such URLs can be cached for good. A cover named any other way (one stored
//! before sizes existed, `covers/{id}.{ext}`, or a key an ingest set) gets its sizes on first
//! request, in a folder named after a hash of its key.

pub mod metadata;

use bytes::Bytes;
use fast_image_resize::{FilterType, MulDiv, ResizeAlg, ResizeOptions, Resizer};
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageReader, Limits};
use ludex_domain::GameId;
use ludex_domain::fields::CoverKey;
use std::io::Cursor;
use tokio::sync::Semaphore;

/// The largest cover: 20 MiB.
pub const MAX_COVER_BYTES: usize = 20 * 1024 * 1024;

/// The most pixels a cover may have: 40 megapixels.
pub const MAX_PIXELS: u64 = 40_000_000;

/// The most memory a decoder may allocate: 40 megapixels of 8-bit RGBA. A 16-bit image of that
/// many pixels needs twice as much and is refused; one of up to 24 megapixels fits.
pub const MAX_DECODE_BYTES: u64 = 4 * MAX_PIXELS;

/// How many covers are decoded, resized and encoded at once in one process; more wait. Each
/// takes up to about 200 MB while it runs (BENCHMARKS.md, "Covers").
pub const CONCURRENT_JOBS: usize = 2;

/// The quality of the WebP sizes (libwebp's scale, 0–100).
const WEBP_QUALITY: f32 = 80.0;

/// A named size: a box the cover is fitted into, keeping its proportions, never enlarged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    /// 90×128: the catalog and the grid.
    Thumb,
    /// 264×374: the game page.
    Small,
    /// 1080 pixels on the long side.
    Big,
}

impl Size {
    pub const ALL: [Size; 3] = [Size::Thumb, Size::Small, Size::Big];

    pub fn name(self) -> &'static str {
        match self {
            Size::Thumb => "thumb",
            Size::Small => "small",
            Size::Big => "big",
        }
    }

    pub fn parse(name: &str) -> Option<Size> {
        Size::ALL.into_iter().find(|size| size.name() == name)
    }

    /// The box at 1×: width and height.
    pub fn bounds(self) -> (u32, u32) {
        match self {
            Size::Thumb => (90, 128),
            Size::Small => (264, 374),
            Size::Big => (1080, 1080),
        }
    }
}

/// A size at a pixel density: 1 (CSS pixels) or 2 (`2x` in a `srcset`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variant {
    pub size: Size,
    pub density: u32,
}

/// The densities every size is made at.
pub const DENSITIES: [u32; 2] = [1, 2];

impl Variant {
    /// Every variant, largest first: the order they are made in, each from the one before.
    pub fn all() -> impl Iterator<Item = Variant> {
        Size::ALL.into_iter().rev().flat_map(|size| {
            DENSITIES
                .into_iter()
                .rev()
                .map(move |density| Variant { size, density })
        })
    }

    /// The dimensions of this variant of an image of `width`×`height`.
    pub fn fit(self, width: u32, height: u32) -> (u32, u32) {
        let (box_w, box_h) = self.size.bounds();
        let scale = f64::min(
            f64::from(box_w * self.density) / f64::from(width),
            f64::from(box_h * self.density) / f64::from(height),
        );
        if scale >= 1.0 {
            return (width, height);
        }
        let side = |n: u32| ((f64::from(n) * scale).round() as u32).max(1);
        (side(width), side(height))
    }

    /// Its file name in a cover's folder: `thumb@2x.webp`.
    fn file_name(self) -> String {
        format!("{}@{}x.webp", self.size.name(), self.density)
    }
}

/// Why an image cannot be a cover. Each is answered 422 with these words.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CoverError {
    #[error(
        "the image is {width}×{height} pixels ({} megapixels); a cover may have at most {} megapixels",
        (u64::from(*width) * u64::from(*height)).div_ceil(1_000_000),
        MAX_PIXELS / 1_000_000
    )]
    TooManyPixels { width: u32, height: u32 },
    #[error(
        "decoding the image would take more than {} MiB of memory (a 16-bit image counts twice)",
        MAX_DECODE_BYTES / (1024 * 1024)
    )]
    TooMuchMemory,
    #[error("the image could not be decoded: {0}")]
    Malformed(String),
    /// Encoding a size failed; not the image's fault.
    #[error("encoding a size failed: {0}")]
    Encoding(String),
}

impl From<image::ImageError> for CoverError {
    fn from(e: image::ImageError) -> Self {
        match e {
            image::ImageError::Limits(_) => CoverError::TooMuchMemory,
            other => CoverError::Malformed(other.to_string()),
        }
    }
}

/// An image format covers may have.
struct ImageType {
    media_type: &'static str,
    extension: &'static str,
    /// Whether bytes are one, by their first bytes.
    is: fn(&[u8]) -> bool,
}

const IMAGES: [ImageType; 3] = [
    ImageType {
        media_type: "image/jpeg",
        extension: "jpg",
        is: |b| b.starts_with(&[0xFF, 0xD8, 0xFF]),
    },
    ImageType {
        media_type: "image/png",
        extension: "png",
        is: |b| b.starts_with(b"\x89PNG\r\n\x1a\n"),
    },
    ImageType {
        media_type: "image/webp",
        extension: "webp",
        is: |b| b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP",
    },
];

/// The media type and extension of an image, recognised by its first bytes.
pub fn image_type(bytes: &[u8]) -> Option<(&'static str, &'static str)> {
    IMAGES
        .iter()
        .find(|image| (image.is)(bytes))
        .map(|image| (image.media_type, image.extension))
}

/// A cover ready to store: the original without its metadata, and every size.
pub struct Processed {
    /// Where the original goes: `covers/{id}/{hash}/original.{ext}`.
    pub key: String,
    pub original: Bytes,
    /// Each variant's key and its WebP bytes.
    pub sizes: Vec<(String, Bytes)>,
}

/// Decodes an upload (a JPEG, PNG or WebP, by [`image_type`]), checks it, strips its metadata
/// and makes its sizes. Blocking: call through [`run`].
pub fn process(id: &GameId, upload: Bytes) -> Result<Processed, CoverError> {
    let (_, extension) = image_type(&upload)
        .ok_or_else(|| CoverError::Malformed("it is not a JPEG, PNG or WebP image".into()))?;
    let (image, orientation) = decode(&upload)?;
    // The sizes first: the decoded image is gone before the stripped copy of the upload is made.
    let sizes = encode_sizes(image, orientation)?;
    let original = metadata::strip(upload, orientation)?;
    let hash = &blake3::hash(&original).to_hex()[..HASH_LEN];
    let key = format!("covers/{id}/{hash}/original.{extension}");
    let sizes = named(id, hash, sizes);
    Ok(Processed {
        key,
        original,
        sizes,
    })
}

/// The sizes of a stored cover that has none yet (one named by `key`), under the same limits
/// as an upload. Blocking: call through [`run`].
pub fn sizes_of(
    id: &GameId,
    key: &CoverKey,
    original: &[u8],
) -> Result<Vec<(String, Bytes)>, CoverError> {
    let (image, orientation) = decode(original)?;
    let sizes = encode_sizes(image, orientation)?;
    Ok(named(id, &version_of(id, key), sizes))
}

/// The sizes with their keys in the folder `version` of `id`.
fn named(id: &GameId, version: &str, sizes: Vec<(Variant, Bytes)>) -> Vec<(String, Bytes)> {
    sizes
        .into_iter()
        .map(|(variant, bytes)| (size_key(id, version, variant), bytes))
        .collect()
}

/// The jobs running now (see [`CONCURRENT_JOBS`]).
static JOBS: Semaphore = Semaphore::const_new(CONCURRENT_JOBS);

/// Runs cover work on the blocking pool once one of the [`CONCURRENT_JOBS`] slots is free. The
/// slot is held by the work itself, so a request that goes away while it runs does not let
/// another start beside it.
pub async fn run<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    // The semaphore is never closed.
    let slot = JOBS.acquire().await.ok();
    tokio::task::spawn_blocking(move || {
        let result = work();
        drop(slot);
        result
    })
    .await
}

/// Decodes an image under the limits; its pixels as stored and how to turn them upright.
fn decode(bytes: &[u8]) -> Result<(DynamicImage, Orientation), CoverError> {
    let reader = || {
        ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| CoverError::Malformed(e.to_string()))
    };
    let (width, height) = reader()?.into_dimensions()?;
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(CoverError::TooManyPixels { width, height });
    }
    let mut reader = reader()?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(width);
    limits.max_image_height = Some(height);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let mut decoder = reader.into_decoder()?;
    // An unreadable orientation is no reason to refuse the pixels.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let image = DynamicImage::from_decoder(decoder)?;
    Ok((image, orientation))
}

/// Whether an orientation turns the image a quarter, swapping width and height.
fn swaps_sides(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// Every variant of `image`, each made from the one before (largest first), as WebP. The
/// orientation is applied to the largest variant, not to the decoded image, which may be forty
/// times its size.
fn encode_sizes(
    image: DynamicImage,
    orientation: Orientation,
) -> Result<Vec<(Variant, Bytes)>, CoverError> {
    let mut current = if image.color().has_alpha() {
        DynamicImage::ImageRgba8(image.into_rgba8())
    } else {
        DynamicImage::ImageRgb8(image.into_rgb8())
    };
    // Each size is fitted to the upright image; the decoded one is turned once the first
    // (largest) size is made from it.
    let (width, height) = if swaps_sides(orientation) {
        (current.height(), current.width())
    } else {
        (current.width(), current.height())
    };
    let mut pending = Some(orientation).filter(|o| *o != Orientation::NoTransforms);
    let mut resizer = Resizer::new();
    let mul_div = MulDiv::default();
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::CatmullRom));
    let mut sizes = Vec::new();
    for variant in Variant::all() {
        let (width, height) = match variant.fit(width, height) {
            (w, h) if pending.is_some_and(swaps_sides) => (h, w),
            upright => upright,
        };
        if (width, height) != (current.width(), current.height()) {
            let mut smaller = DynamicImage::new(width, height, current.color());
            // Colours are resized premultiplied by their alpha. The resizer would premultiply
            // a copy of its source, as large as the decoded image the first time (160 MB at
            // the limit); the source is replaced anyway, so it is done in place.
            let alpha = current.color().has_alpha();
            if alpha {
                mul_div
                    .multiply_alpha_inplace(&mut current)
                    .map_err(|e| CoverError::Encoding(e.to_string()))?;
            }
            resizer
                .resize(&current, &mut smaller, &options.use_alpha(!alpha))
                .map_err(|e| CoverError::Encoding(e.to_string()))?;
            if alpha {
                mul_div
                    .divide_alpha_inplace(&mut smaller)
                    .map_err(|e| CoverError::Encoding(e.to_string()))?;
            }
            current = smaller;
        }
        if let Some(turn) = pending.take() {
            current.apply_orientation(turn);
        }
        sizes.push((variant, webp(&current)?));
    }
    Ok(sizes)
}

/// Lossy WebP of an RGB or RGBA image.
fn webp(image: &DynamicImage) -> Result<Bytes, CoverError> {
    let encoder = match image {
        DynamicImage::ImageRgba8(rgba) => {
            webp::Encoder::from_rgba(rgba.as_raw(), rgba.width(), rgba.height())
        }
        DynamicImage::ImageRgb8(rgb) => {
            webp::Encoder::from_rgb(rgb.as_raw(), rgb.width(), rgb.height())
        }
        other => {
            return Err(CoverError::Encoding(format!(
                "{:?} pixels cannot be encoded",
                other.color()
            )));
        }
    };
    encoder
        .encode_simple(false, WEBP_QUALITY)
        .map(|memory| Bytes::copy_from_slice(&memory))
        .map_err(|e| CoverError::Encoding(format!("{e:?}")))
}

/// Hex digits of the content hash in a cover's folder name.
const HASH_LEN: usize = 16;

/// What a version (`?v=`) looks like.
pub const VERSION_PATTERN: &str = "^[0-9a-f]{16}$";

/// The name of the folder of a cover's sizes: the content hash in the key of a cover uploaded
/// through the API, or a hash of any other key. What `?v=` carries.
pub fn version_of(id: &GameId, key: &CoverKey) -> String {
    uploaded_hash(id, key).map_or_else(
        || blake3::hash(key.as_str().as_bytes()).to_hex()[..HASH_LEN].to_owned(),
        str::to_owned,
    )
}

/// Whether `text` is a version ([`VERSION_PATTERN`]).
pub fn is_version(text: &str) -> bool {
    text.len() == HASH_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The hash of `covers/{id}/{hash}/original.{ext}`, if `key` is one.
fn uploaded_hash<'k>(id: &GameId, key: &'k CoverKey) -> Option<&'k str> {
    let rest = key.as_str().strip_prefix(&format!("covers/{id}/"))?;
    let (hash, file) = rest.split_once('/')?;
    let original = IMAGES
        .iter()
        .any(|image| file.strip_prefix("original.") == Some(image.extension));
    (is_version(hash) && original).then_some(hash)
}

/// Whether `key` is a cover `PUT /games/{id}/cover` wrote for `id`: today's
/// `covers/{id}/{hash}/original.{ext}`, or `covers/{id}.{ext}` from before sizes existed. A
/// game may name any cover key (an export ingests again), but it deletes only its own.
pub fn is_own(id: &GameId, key: &CoverKey) -> bool {
    uploaded_hash(id, key).is_some()
        || IMAGES
            .iter()
            .any(|image| key.as_str() == format!("covers/{id}.{}", image.extension))
}

/// The key of one variant of the cover `key` of `id`.
pub fn variant_key(id: &GameId, key: &CoverKey, variant: Variant) -> String {
    size_key(id, &version_of(id, key), variant)
}

/// The URL of one variant of the cover `key` of `id`, naming its version (so it may be cached
/// for good): what pages show. Ids need no escaping in a URL.
pub fn url(id: &GameId, key: &CoverKey, variant: Variant) -> String {
    let density = match variant.density {
        1 => String::new(),
        n => format!("&dpr={n}"),
    };
    format!(
        "/games/{id}/cover?size={}{density}&v={}",
        variant.size.name(),
        version_of(id, key)
    )
}

/// The key of one variant in the folder `version` of `id`.
fn size_key(id: &GameId, version: &str, variant: Variant) -> String {
    format!("covers/{id}/{version}/{}", variant.file_name())
}

/// What goes when `id` stops naming the cover `key`: its sizes, and the original when it is
/// the game's own.
pub fn objects_of(id: &GameId, key: &CoverKey) -> Vec<String> {
    let own = is_own(id, key).then(|| key.as_str().to_owned());
    Variant::all()
        .map(|variant| variant_key(id, key, variant))
        .chain(own)
        .collect()
}

#[cfg(test)]
mod tests;
