//! What a cover costs: the upload path's time and peak memory, and WebP against JPEG for the
//! six sizes (BENCHMARKS.md, "Covers"). Run it as its own process, so that its peak memory is
//! the cover's alone, and under `prlimit --as=` to see what a memory limit does to it.
//!
//! ```sh
//! cargo build --release --example covers
//! target/release/examples/covers generate cover.jpg      # ~19 MB, 40 megapixels, photo-like
//! target/release/examples/covers generate cover.png      # the same as RGBA: the decoder's worst case
//! target/release/examples/covers process cover.jpg       # covers::process, as PUT /games/{id}/cover runs it
//! target/release/examples/covers encoders cover.jpg      # the six sizes as WebP and as JPEG
//! ```

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use image::codecs::jpeg::JpegEncoder;
use image::{ImageEncoder, RgbImage};
use ludex::covers;
use ludex_domain::GameId;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["generate", file] => generate(file),
        ["process", file] => process(file),
        ["encoders", file] => encoders(file),
        _ => anyhow::bail!("usage: covers generate|process|encoders FILE"),
    }
}

/// A 7,300×5,475 (40.0 megapixel) JPEG of about 19 MB: smooth shapes under sensor-like noise,
/// which is what makes a camera's JPEG that large. A `.png` name writes it as 8-bit RGBA PNG.
fn generate(file: &str) -> anyhow::Result<()> {
    let (width, height) = (7300, 5475);
    // A PNG of noise would be 97 MB: the PNG gets the shapes only (a few MB).
    let png = file.ends_with(".png");
    let mut noise = fastrand::Rng::with_seed(7);
    let image = RgbImage::from_fn(width, height, |x, y| {
        let base = [
            (x * 255 / width) as i32,
            (y * 255 / height) as i32,
            (((x / 400 + y / 300) % 2) * 160) as i32,
        ];
        let grain = if png { 0 } else { 11 };
        image::Rgb(base.map(|c| (c + noise.i32(-grain..=grain)).clamp(0, 255) as u8))
    });
    let mut out = std::io::BufWriter::new(std::fs::File::create(file)?);
    if png {
        // The decoder's worst case at the pixel limit: 8-bit RGBA, 160 MB decoded.
        let rgba = image::DynamicImage::ImageRgb8(image).into_rgba8();
        image::codecs::png::PngEncoder::new(&mut out).write_image(
            rgba.as_raw(),
            width,
            height,
            image::ExtendedColorType::Rgba8,
        )?;
    } else {
        JpegEncoder::new_with_quality(&mut out, 92).write_image(
            image.as_raw(),
            width,
            height,
            image::ExtendedColorType::Rgb8,
        )?;
    }
    drop(out);
    println!(
        "{file}: {width}×{height}, {} bytes",
        std::fs::metadata(file)?.len()
    );
    Ok(())
}

/// `covers::process` once, as the upload path runs it: its time, what it made, and the
/// process's peak resident memory.
fn process(file: &str) -> anyhow::Result<()> {
    let upload = std::fs::read(file)?;
    let bytes = upload.len();
    let id = GameId::parse("bench").map_err(anyhow::Error::msg)?;
    let started = Instant::now();
    let processed = covers::process(&id, upload.into())?;
    let elapsed = started.elapsed();
    println!(
        "process: {bytes} bytes in {:.2} s; original kept {} bytes",
        elapsed.as_secs_f64(),
        processed.original.len()
    );
    for (key, size) in &processed.sizes {
        println!("  {key}: {} bytes", size.len());
    }
    println!("peak RSS: {} MiB", peak_rss_kib()? / 1024);
    Ok(())
}

/// The six sizes (made by `covers::process`, decoded back) encoded as lossy WebP at the
/// quality `covers` uses and as JPEG at 85: time and bytes of each.
fn encoders(file: &str) -> anyhow::Result<()> {
    let id = GameId::parse("bench").map_err(anyhow::Error::msg)?;
    let processed = covers::process(&id, std::fs::read(file)?.into())?;
    println!("| size | pixels | WebP ms | WebP bytes | JPEG ms | JPEG bytes |");
    println!("|---|---:|---:|---:|---:|---:|");
    let mut totals = [0.0, 0.0, 0.0, 0.0];
    for (key, webp) in &processed.sizes {
        let rgb = image::load_from_memory(webp)?.into_rgb8();
        let (width, height) = rgb.dimensions();
        let started = Instant::now();
        let again = webp::Encoder::from_rgb(rgb.as_raw(), width, height)
            .encode_simple(false, 80.0)
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let webp_ms = started.elapsed().as_secs_f64() * 1000.0;
        let started = Instant::now();
        let mut jpeg = Vec::new();
        JpegEncoder::new_with_quality(&mut jpeg, 85).write_image(
            rgb.as_raw(),
            width,
            height,
            image::ExtendedColorType::Rgb8,
        )?;
        let jpeg_ms = started.elapsed().as_secs_f64() * 1000.0;
        let name = key.rsplit('/').next().unwrap_or(key);
        println!(
            "| {name} | {width}×{height} | {webp_ms:.1} | {} | {jpeg_ms:.1} | {} |",
            again.len(),
            jpeg.len()
        );
        for (total, value) in
            totals
                .iter_mut()
                .zip([webp_ms, again.len() as f64, jpeg_ms, jpeg.len() as f64])
        {
            *total += value;
        }
    }
    println!(
        "| all six | | {:.1} | {} | {:.1} | {} |",
        totals[0], totals[1], totals[2], totals[3]
    );
    Ok(())
}

/// This process's peak resident memory (`VmHWM`).
fn peak_rss_kib() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmHWM in /proc/self/status"))
}
