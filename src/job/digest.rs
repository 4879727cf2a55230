//! What identifies a classify job across machines: the model's digest and the data's
//! fingerprint, both sha256 in hex.

use crate::data::idx;
use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Bytes read from each end of a data file for its fingerprint.
const END_BYTES: u64 = 1 << 20;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// sha256 of a whole file, in hex.
pub fn file_sha256(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Adds a file's length and its first and last MiB (all of it when smaller) to `hasher`.
fn hash_ends(hasher: &mut Sha256, path: &Path) -> Result<()> {
    let io = |e| Error::io(path, e);
    let mut file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    hasher.update(len.to_le_bytes());
    let mut buf = Vec::new();
    (&mut file)
        .take(END_BYTES)
        .read_to_end(&mut buf)
        .map_err(io)?;
    if len > END_BYTES {
        file.seek(SeekFrom::Start(
            len.saturating_sub(END_BYTES).max(END_BYTES),
        ))
        .map_err(io)?;
        file.read_to_end(&mut buf).map_err(io)?;
    }
    hasher.update(&buf);
    Ok(())
}

/// The fingerprint of a data spec, so that shards and resumed runs know they read the same
/// items. The rule: `synth:N:SEED` is its canonical name (the items follow from it); a file is
/// the sha256 of its length and its first and last MiB, with the labels file beside an IDX file
/// hashed the same way; a folder is the sha256 of every file's relative path, length, and first
/// and last MiB, in path order. A change in the middle of a big file that keeps its length is not
/// seen: that is the price of not reading terabytes twice.
pub fn data_fingerprint(spec: &str, canonical_name: &str) -> Result<String> {
    if spec.starts_with("synth:") {
        return Ok(canonical_name.to_string());
    }
    let path = Path::new(spec);
    let mut hasher = Sha256::new();
    if path.is_dir() {
        let mut files = Vec::new();
        list_files(path, path, &mut files)?;
        files.sort();
        for rel in files {
            hasher.update(rel.as_bytes());
            hasher.update([0]);
            hash_ends(&mut hasher, &path.join(&rel))?;
        }
    } else {
        hash_ends(&mut hasher, path)?;
        if let Some(labels) = idx::labels_path_for(path) {
            hasher.update(b"labels");
            hash_ends(&mut hasher, &labels)?;
        }
    }
    Ok(format!("sha256-ends:{}", hex(&hasher.finalize())))
}

fn list_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        if path.is_dir() {
            list_files(root, &path, out)?;
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.to_string_lossy().into_owned());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_follow_the_bytes_that_matter() {
        let dir = std::env::temp_dir().join(format!("microtask-digest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("items.bin");
        let spec = f.to_str().unwrap();
        std::fs::write(&f, vec![7u8; 3 << 20]).unwrap();
        let a = data_fingerprint(spec, "x").unwrap();
        assert_eq!(a, data_fingerprint(spec, "x").unwrap());
        let mut bytes = vec![7u8; 3 << 20];
        bytes[(3 << 20) - 1] = 8; // the last byte
        std::fs::write(&f, &bytes).unwrap();
        assert_ne!(a, data_fingerprint(spec, "x").unwrap());
        assert_eq!(
            data_fingerprint("synth:10:1", "synth:10:1").unwrap(),
            "synth:10:1"
        );
        std::fs::write(&f, b"abc").unwrap();
        assert_eq!(
            file_sha256(&f).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
