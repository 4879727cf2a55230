//! What the fuzz targets share: a scratch folder per process (in memory when /dev/shm exists),
//! since most parsers take paths, and the IDX drain that every IDX-shaped target runs.

use microtask::data::stream::ItemStream;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// This process's scratch folder, made once.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = Path::new("/dev/shm");
        let base = if base.is_dir() {
            base.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("microtask-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch folder");
        dir
    })
}

/// Writes `bytes` to `name` under the scratch folder (folders made as needed).
pub fn put(name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch().join(name);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("scratch subfolder");
    }
    std::fs::write(&path, bytes).expect("scratch file");
    path
}

/// Items per chunk, as `classify` and `export` read them.
pub const CHUNK_ITEMS: usize = 1 << 16;

/// Opens an IDX images file every way the engine does and reads all of its items: streamed in
/// chunks (what `classify` and `export` do), from a shard's first item, loaded whole (`run`, `train`), and as a labels file.
pub fn read_idx_every_way(path: &Path) {
    if let Ok(mut stream) = ItemStream::open(&path.display().to_string()) {
        while let Ok(Some(chunk)) = stream.next_chunk(CHUNK_ITEMS) {
            assert_eq!(chunk.pixels.len() % stream.features(), 0);
        }
    }
    // A shard or a resumed run starts by skipping items.
    if let Ok(mut stream) = ItemStream::open(&path.display().to_string()) {
        let half = stream.len / 2;
        if stream.seek(half).is_ok() {
            while let Ok(Some(_)) = stream.next_chunk(CHUNK_ITEMS) {}
        }
    }
    if let Ok(set) = microtask::data::load(&path.display().to_string()) {
        assert_eq!(set.pixels.len(), set.len() * set.features());
    }
    let _ = microtask::data::idx::load_labels(path);
}
