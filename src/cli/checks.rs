//! The inputs each command declares to its output check: files an output must not replace.

use microtask::data::idx;
use microtask::output::Outputs;
use std::path::Path;

/// Declares the files behind a data spec: an IDX file and the labels file beside it (`synth:`
/// and folders have none that an output file could replace).
pub fn data(outs: &mut Outputs, flag: &str, spec: &str) {
    if spec.starts_with("synth:") {
        return;
    }
    let path = Path::new(spec);
    if path.is_file() {
        outs.input(flag, path);
        if let Some(labels) = idx::labels_path_for(path) {
            outs.input(&format!("{flag} (its labels)"), labels);
        }
    }
}
