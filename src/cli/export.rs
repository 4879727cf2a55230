//! `microtask export`: writes any data set as a raw IDX images file (and the labels file beside
//! it), streaming, so that `synth:` can make big test files without holding them in memory.

use super::progress;
use microtask::data::idx;
use microtask::data::stream::ItemStream;
use microtask::error::Error;
use microtask::output::write_atomic;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Data to export: IDX file, image folder, or synth:N[:SEED].
    #[arg(long)]
    pub data: String,
    /// Output images file. Name it `NAME-images-idx3-ubyte` so the labels file
    /// `NAME-labels-idx1-ubyte` written beside it is found when the file is read back.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(a: ExportArgs) -> anyhow::Result<()> {
    let mut stream = ItemStream::open(&a.data)?;
    let bar = progress::bar(stream.len as u64, "export");
    let mut labels: Vec<u8> = Vec::new();
    let mut all_labelled = true;
    write_atomic(&a.out, |w| {
        let io = |e| Error::io(&a.out, e);
        idx::write_images_header(w, stream.len, stream.height, stream.width).map_err(io)?;
        while let Some(chunk) = stream.next_chunk(1 << 16)? {
            w.write_all(&chunk.pixels).map_err(io)?;
            match &chunk.labels {
                Some(l) => labels.extend_from_slice(l),
                None => all_labelled = false,
            }
            bar.inc((chunk.pixels.len() / stream.features()) as u64);
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    println!(
        "{} items of {}x{} -> {}",
        stream.len,
        stream.height,
        stream.width,
        a.out.display()
    );
    if all_labelled {
        if let Some(lp) = idx::labels_name_for(&a.out) {
            write_atomic(&lp, |w| {
                idx::write_labels(w, &labels).map_err(|e| Error::io(&lp, e))
            })?;
            println!("labels -> {}", lp.display());
        }
    }
    Ok(())
}
