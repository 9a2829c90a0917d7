use super::*;
use image::codecs::png::PngEncoder;
use image::{ImageEncoder, RgbImage};
use img_parts::{DynImage, ImageEXIF, ImageICC};

fn id(text: &str) -> GameId {
    GameId::parse(text).unwrap()
}

fn key(text: &str) -> CoverKey {
    CoverKey::parse(text).unwrap()
}

/// A `width`×`height` gradient in `format`.
fn encoded(width: u32, height: u32, format: image::ImageFormat) -> Vec<u8> {
    let image = RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    });
    let mut bytes = Cursor::new(Vec::new());
    image.write_to(&mut bytes, format).unwrap();
    bytes.into_inner()
}

fn png(width: u32, height: u32) -> Vec<u8> {
    encoded(width, height, image::ImageFormat::Png)
}

fn jpeg(width: u32, height: u32) -> Vec<u8> {
    encoded(width, height, image::ImageFormat::Jpeg)
}

/// `bytes` with EXIF, XMP and an ICC profile added (through the same library that strips them).
fn with_metadata(bytes: Vec<u8>, exif: Bytes) -> Vec<u8> {
    let mut image = DynImage::from_bytes(bytes.into()).unwrap().unwrap();
    image.set_exif(Some(exif));
    image.set_icc_profile(Some(Bytes::from_static(b"an ICC profile")));
    match &mut image {
        DynImage::Jpeg(jpeg) => jpeg.segments_mut().insert(
            1,
            img_parts::jpeg::JpegSegment::new_with_contents(
                0xE1,
                Bytes::from_static(b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>GPS</x:xmpmeta>"),
            ),
        ),
        DynImage::Png(png) => png.chunks_mut().insert(
            1,
            img_parts::png::PngChunk::new(*b"iTXt", Bytes::from_static(b"XML:com.adobe.xmp\0GPS")),
        ),
        DynImage::WebP(_) => unreachable!("not used"),
    }
    image.encoder().bytes().to_vec()
}

/// An EXIF block with an orientation and a place, little-endian as cameras often write it.
fn camera_exif(orientation: u8) -> Bytes {
    let mut exif = b"II\x2a\0\x08\0\0\0".to_vec();
    exif.extend_from_slice(&2u16.to_le_bytes());
    exif.extend_from_slice(&0x0112u16.to_le_bytes());
    exif.extend_from_slice(&3u16.to_le_bytes());
    exif.extend_from_slice(&1u32.to_le_bytes());
    exif.extend_from_slice(&[orientation, 0, 0, 0]);
    exif.extend_from_slice(&0x010Fu16.to_le_bytes()); // Make
    exif.extend_from_slice(&2u16.to_le_bytes());
    exif.extend_from_slice(&4u32.to_le_bytes());
    exif.extend_from_slice(b"GPS\0");
    exif.extend_from_slice(&0u32.to_le_bytes());
    exif.into()
}

fn dimensions(webp: &[u8]) -> (u32, u32) {
    ImageReader::new(Cursor::new(webp))
        .with_guessed_format()
        .unwrap()
        .into_dimensions()
        .unwrap()
}

#[test]
fn sizes_fit_their_box_keeping_proportions_and_are_never_enlarged() {
    let thumb = |density| Variant {
        size: Size::Thumb,
        density,
    };
    let big = |density| Variant {
        size: Size::Big,
        density,
    };
    assert_eq!(thumb(1).fit(1000, 1500), (85, 128));
    assert_eq!(thumb(2).fit(1000, 1500), (171, 256));
    assert_eq!(thumb(1).fit(1500, 1000), (90, 60));
    assert_eq!(big(1).fit(4000, 3000), (1080, 810));
    assert_eq!(big(2).fit(4000, 3000), (2160, 1620));
    assert_eq!(big(2).fit(800, 600), (800, 600), "never enlarged");
    assert_eq!(thumb(1).fit(10_000, 1), (90, 1), "never zero");
    assert_eq!(Variant::all().count(), 6);
}

#[test]
fn an_upload_is_stored_under_its_content_with_six_webp_sizes() {
    let game = id("g1");
    let upload = png(1000, 1500);
    let processed = process(&game, upload.clone().into()).unwrap();
    let hash = &blake3::hash(&processed.original).to_hex()[..16];
    assert_eq!(processed.key, format!("covers/g1/{hash}/original.png"));
    let cover = key(&processed.key);
    assert!(is_own(&game, &cover));
    assert_eq!(version_of(&game, &cover), hash);
    let sizes: Vec<(String, (u32, u32))> = processed
        .sizes
        .iter()
        .map(|(key, bytes)| {
            assert_eq!(image_type(bytes), Some(("image/webp", "webp")));
            (key.clone(), dimensions(bytes))
        })
        .collect();
    let expected = [
        ("big@2x", (1000, 1500)),
        ("big@1x", (720, 1080)),
        ("small@2x", (499, 748)),
        ("small@1x", (249, 374)),
        ("thumb@2x", (171, 256)),
        ("thumb@1x", (85, 128)),
    ];
    for ((key, dims), (name, want)) in sizes.iter().zip(expected) {
        assert_eq!(key, &format!("covers/g1/{hash}/{name}.webp"));
        assert_eq!(*dims, want, "{name}");
    }
    assert_eq!(
        objects_of(&game, &cover).len(),
        7,
        "the six sizes and the original"
    );
}

#[test]
fn truncated_and_malformed_images_are_refused_with_the_reason() {
    for whole in [png(200, 300), jpeg(200, 300)] {
        let truncated = &whole[..whole.len() / 2];
        let refused = process(&id("g"), Bytes::copy_from_slice(truncated))
            .err()
            .unwrap();
        assert!(matches!(refused, CoverError::Malformed(_)), "{refused:?}");
    }
    let mut garbage = b"\x89PNG\r\n\x1a\n".to_vec();
    garbage.extend_from_slice(&[0x55; 100]);
    assert!(matches!(
        process(&id("g"), garbage.into()).err().unwrap(),
        CoverError::Malformed(_)
    ));
}

#[test]
fn sizes_are_turned_upright_and_the_original_keeps_only_its_orientation() {
    // Stored 300 wide and 200 high, shown turned a quarter (EXIF 6): portrait.
    for upload in [png(300, 200), jpeg(300, 200)] {
        let upload = with_metadata(upload, camera_exif(6));
        let processed = process(&id("g"), upload.into()).unwrap();
        let thumb = &processed.sizes[5].1;
        assert_eq!(dimensions(thumb), (85, 128));
        let original = DynImage::from_bytes(processed.original.clone())
            .unwrap()
            .unwrap();
        assert_eq!(
            original.exif().map(|e| Orientation::from_exif_chunk(&e)),
            Some(Some(Orientation::Rotate90)),
        );
        assert!(
            !original.exif().unwrap().windows(3).any(|w| w == b"GPS"),
            "the rest of EXIF is gone"
        );
        assert!(
            !processed.original.windows(3).any(|w| w == b"GPS"),
            "XMP is gone too"
        );
        assert_eq!(
            original.icc_profile().as_deref(),
            Some(&b"an ICC profile"[..]),
            "the colour profile stays"
        );
    }
}

#[test]
fn transparency_is_kept_in_the_sizes() {
    // The left half transparent red, the right half opaque blue.
    let image = image::RgbaImage::from_fn(200, 300, |x, _| {
        if x < 100 {
            image::Rgba([255, 0, 0, 0])
        } else {
            image::Rgba([0, 0, 255, 255])
        }
    });
    let mut upload = Vec::new();
    PngEncoder::new(&mut upload)
        .write_image(image.as_raw(), 200, 300, image::ExtendedColorType::Rgba8)
        .unwrap();
    let processed = process(&id("g"), upload.into()).unwrap();
    let thumb = image::load_from_memory(&processed.sizes[5].1)
        .unwrap()
        .into_rgba8();
    assert_eq!(thumb.dimensions(), (85, 128));
    assert_eq!(
        thumb.get_pixel(5, 64)[3],
        0,
        "transparent stays transparent"
    );
    assert_eq!(thumb.get_pixel(80, 64)[3], 255);
    // Along the edge, where the filter mixes both halves, the invisible red must not tint the
    // blue: colours are resized premultiplied by their alpha.
    for x in 38..48 {
        let pixel = thumb.get_pixel(x, 64);
        if pixel[3] > 16 {
            assert!(pixel[0] < 40 && pixel[2] > 160, "x = {x}: {pixel:?}");
        }
    }
}

#[test]
fn an_upright_original_keeps_no_exif_at_all() {
    let upload = with_metadata(jpeg(64, 64), camera_exif(1));
    let processed = process(&id("g"), upload.into()).unwrap();
    let original = DynImage::from_bytes(processed.original).unwrap().unwrap();
    assert_eq!(original.exif(), None);
}

#[test]
fn only_a_games_own_covers_are_its_own() {
    let game = id("g1");
    assert!(is_own(&game, &key("covers/g1.png")), "from before sizes");
    assert!(is_own(
        &game,
        &key("covers/g1/0123456789abcdef/original.webp")
    ));
    for other in [
        "covers/g2.png",
        "covers/g1/0123456789abcdef/thumb@1x.webp",
        "covers/g1/0123456789ABCDEF/original.png",
        "covers/g1/0123/original.png",
        "covers/g2/0123456789abcdef/original.png",
        "covers/shared/g1.png",
    ] {
        assert!(!is_own(&game, &key(other)), "{other}");
    }
    // Another key's sizes are the game's own, in a folder named after the key.
    let named = key("covers/shared/g1.png");
    let objects = objects_of(&game, &named);
    assert_eq!(objects.len(), 6, "the sizes only: {objects:?}");
    let version = version_of(&game, &named);
    assert_eq!(version.len(), 16);
    assert!(objects[0].starts_with(&format!("covers/g1/{version}/")));
}

#[test]
fn images_are_recognised_by_their_magic_bytes() {
    assert_eq!(
        image_type(b"\xFF\xD8\xFF\xE0rest").map(|t| t.1),
        Some("jpg")
    );
    assert_eq!(
        image_type(b"\x89PNG\r\n\x1a\nrest").map(|t| t.1),
        Some("png")
    );
    assert_eq!(
        image_type(b"RIFF\0\0\0\0WEBPVP8 ").map(|t| t.1),
        Some("webp")
    );
    assert_eq!(image_type(b"GIF89a"), None);
}
