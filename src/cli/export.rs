//! `microtask export`: writes any data set as a raw IDX images file (and the labels file beside
//! it), streaming, so that `synth:` can make big test files without holding them in memory.

use super::{checks, progress};
use microtask::data::idx;
use microtask::data::stream::ItemStream;
use microtask::output::Outputs;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Data to export: IDX file, image folder, or synth:N[:SEED].
    #[arg(long)]
    pub data: String,
    /// Output images file. Name it `NAME-images-idx3-ubyte` so the labels file
    /// `NAME-labels-idx1-ubyte` written beside it is found when the file is read back. A name
    /// ending in `.gz` is written gzip-compressed (and so is its labels file).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(a: ExportArgs) -> anyhow::Result<()> {
    let mut outs = Outputs::new();
    checks::data(&mut outs, "--data", &a.data);
    outs.output("--out", &a.out);
    match idx::labels_name_for(&a.out) {
        Some(labels) => {
            outs.output("--out (its labels)", labels);
        }
        None => eprintln!(
            "note: {} is not named NAME-images-idx3-ubyte[.gz]: no labels file is written",
            a.out.display()
        ),
    }
    outs.check()?;
    let stream = ItemStream::open(&a.data)?;
    let bar = progress::bar(stream.len as u64, "export");
    // The images and their labels file are renamed together.
    let done = outs.commit(|| idx::export(stream, &a.out, &|n| bar.set_position(n)))?;
    bar.finish_and_clear();
    println!(
        "{} items of {}x{} -> {}",
        done.items,
        done.height,
        done.width,
        a.out.display()
    );
    if let Some(lp) = &done.labels {
        println!("labels -> {}", lp.display());
    }
    Ok(())
}
