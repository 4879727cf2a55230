//! The `.npy` reader and writer against headers as NumPy writes them, byte for byte.

use super::header::MAGIC;
use super::*;

/// A header as NumPy 2.x writes it: the dict padded with spaces to 128 bytes in all.
fn numpy_header(version: u8, dict: &str) -> Vec<u8> {
    let prefix = if version == 1 { 10 } else { 12 };
    let len = 128 - prefix;
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        out.extend_from_slice(&(len as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(len as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.resize(127, b' ');
    out.push(b'\n');
    out
}

fn dict(descr: &str, fortran: bool, shape: &str) -> String {
    let order = if fortran { "True" } else { "False" };
    format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}")
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn err(r: Result<impl std::fmt::Debug>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn numpy_headers_of_each_version_and_dtype_load() {
    let dir = tempfile::tempdir().unwrap();
    // The exact header bytes NumPy 2.4 wrote for np.save('f32.npy', x) with x of (3, 4).
    let mut want =
        b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }"
            .to_vec();
    want.resize(127, b' ');
    want.push(b'\n');
    assert_eq!(numpy_header(1, &dict("<f4", false, "(3, 4)")), want);
    let values: Vec<f32> = (0..12).map(|v| v as f32 / 7.0).collect();
    let le: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    for version in [1, 2, 3] {
        let mut bytes = numpy_header(version, &dict("<f4", false, "(3, 4)"));
        bytes.extend_from_slice(&le);
        let m = NpyMatrix::open(&write(dir.path(), "x.npy", &bytes)).unwrap();
        assert_eq!((m.rows, m.cols, m.dtype, m.offset), (3, 4, Dtype::F32, 128));
        assert_eq!(m.rows_bytes(1..3), &le[16..]);
        m.check_finite(0..3).unwrap();
    }
    for (descr, dtype, elem) in [("|u1", Dtype::U8, 1), ("<f2", Dtype::F16, 2)] {
        let mut bytes = numpy_header(1, &dict(descr, false, "(3, 4)"));
        bytes.extend((0..12 * elem).map(|b| b as u8));
        let m = NpyMatrix::open(&write(dir.path(), "y.npy", &bytes)).unwrap();
        assert_eq!((m.dtype, m.row_bytes()), (dtype, 4 * elem));
        assert_eq!(m.rows_bytes(2..3), &bytes[128 + 8 * elem..]);
    }
    // Old NumPy: 16-byte alignment, `3L` longs, double quotes, no trailing comma.
    let text = "{\"descr\": \"|u1\", \"fortran_order\": False, \"shape\": (2L, 3L)}";
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&[1, 0, (text.len() + 1) as u8, 0]);
    bytes.extend_from_slice(text.as_bytes());
    bytes.push(b'\n');
    let offset = bytes.len();
    bytes.extend_from_slice(&[1, 2, 3, 4, 5, 6]);
    let m = NpyMatrix::open(&write(dir.path(), "old.npy", &bytes)).unwrap();
    assert_eq!((m.rows, m.cols, m.offset), (2, 3, offset));
    assert_eq!(m.rows_bytes(0..2), &[1, 2, 3, 4, 5, 6]);
}

#[test]
fn writer_output_reads_back_with_an_aligned_header() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.npy");
    let data: Vec<f32> = (0..2 * 3 * 5).map(|v| v as f32 * 0.25 - 1.0).collect();
    write_npy_f32(&p, &[2, 3, 5], &data).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    let header = parse_header(&p, &bytes).unwrap();
    assert_eq!(header.shape, [2, 3, 5]);
    assert_eq!(header.descr, "<f4");
    assert_eq!(header.data_offset % 64, 0);
    assert_eq!(bytes[header.data_offset - 1], b'\n');
    let back: Vec<f32> = bytes[header.data_offset..]
        .chunks_exact(4)
        .map(|f| f32::from_le_bytes([f[0], f[1], f[2], f[3]]))
        .collect();
    assert_eq!(back, data);
    // A 2-D one opens as a matrix; 1-D shapes get Python's trailing comma.
    write_npy_f32(&p, &[6, 5], &data).unwrap();
    let m = NpyMatrix::open(&p).unwrap();
    assert_eq!((m.rows, m.cols), (6, 5));
    assert!(String::from_utf8_lossy(&header_bytes("<f4", &[7])).contains("(7,)"));
    assert!(err(write_npy_f32(&p, &[4, 5], &data)).contains("does not hold 30"));
}

#[test]
fn unusable_matrices_are_refused_naming_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let with = |descr: &str, fortran: bool, shape: &str, data: usize| {
        let mut b = numpy_header(1, &dict(descr, fortran, shape));
        b.resize(128 + data, 0);
        b
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "three-d",
            with("<f4", false, "(2, 2, 2)", 32),
            "shape (2, 2, 2)",
        ),
        ("one-d", with("<f4", false, "(4,)", 16), "2-D matrix"),
        ("fortran", with("<f4", true, "(2, 2)", 16), "Fortran"),
        ("big", with(">f4", false, "(2, 2)", 16), "big-endian"),
        (
            "int8",
            with("|i1", false, "(2, 2)", 4),
            "'|i1' is not supported",
        ),
        ("f64", with("<f8", false, "(2, 2)", 32), "float64"),
        ("object", with("|O", false, "(2, 2)", 32), "Python objects"),
        ("short", with("<f4", false, "(2, 2)", 15), "truncated"),
        ("long", with("<f4", false, "(2, 2)", 17), "145 bytes"),
        ("nocols", with("<f4", false, "(2, 0)", 0), "0 columns"),
        (
            "huge",
            with("<f4", false, "(4294967296, 4294967296)", 0),
            "too large",
        ),
        (
            "garbage",
            with("<f4", false, "(2, x)", 16),
            "not a valid .npy",
        ),
        ("magic", b"\x93NUMPX\x01\x00\x00\x00".to_vec(), "magic"),
        (
            "version",
            numpy_header(4, &dict("<f4", false, "(1, 1)")),
            "version 4.0",
        ),
        (
            "cut",
            numpy_header(1, &dict("<f4", false, "(1, 1)"))[..60].to_vec(),
            "header",
        ),
        ("empty", Vec::new(), "magic"),
    ];
    for (name, bytes, problem) in cases {
        let p = write(dir.path(), &format!("{name}.npy"), &bytes);
        let msg = err(NpyMatrix::open(&p));
        assert!(msg.contains(&format!("{name}.npy")), "{msg}");
        assert!(msg.contains(problem), "{name}: {msg}");
    }
    let mut b = numpy_header(1, "{'descr': '<f4', 'shape': (1, 1), }");
    b.extend_from_slice(&[0; 4]);
    let msg = err(NpyMatrix::open(&write(dir.path(), "nokey.npy", &b)));
    assert!(msg.contains("must hold 'descr'"), "{msg}");
    let twice = "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1, 1), }";
    let mut b = numpy_header(1, twice);
    b.extend_from_slice(&[0; 4]);
    let msg = err(NpyMatrix::open(&write(dir.path(), "twice.npy", &b)));
    assert!(msg.contains("twice"), "{msg}");
}

#[test]
fn nan_and_infinite_features_are_found_by_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let mut f32s = [0.5f32; 12];
    f32s[7] = f32::NAN;
    let p = dir.path().join("nan.npy");
    write_npy_f32(&p, &[3, 4], &f32s).unwrap();
    let m = NpyMatrix::open(&p).unwrap();
    m.check_finite(0..1).unwrap();
    let msg = err(m.check_finite(0..3));
    assert!(
        msg.contains("nan.npy") && msg.contains("row 1, column 3"),
        "{msg}"
    );
    // f16: 1.0 is 0x3c00, +infinity 0x7c00, a NaN 0x7e00.
    let mut halves = [0x3c00u16; 6];
    halves[4] = 0x7c00;
    let bytes: Vec<u8> = halves.iter().flat_map(|h| h.to_le_bytes()).collect();
    let p = dir.path().join("inf.npy");
    write_npy_bytes(&p, "<f2", &[2, 3], &bytes).unwrap();
    let msg = err(NpyMatrix::open(&p).unwrap().check_finite(0..2));
    assert!(msg.contains("row 1, column 1"), "{msg}");
    write_npy_bytes(&p, "|u1", &[2, 3], &[255; 6]).unwrap();
    NpyMatrix::open(&p).unwrap().check_finite(0..2).unwrap();
}

#[test]
fn integer_labels_of_any_width_load_and_out_of_range_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("y.npy");
    let classes = [0u8, 3, 9, 255];
    for descr in ["|u1", "|i1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8"] {
        let size = split_descr(descr).unwrap().2;
        let bytes: Vec<u8> = classes
            .iter()
            .flat_map(|&c| (c as u64).to_le_bytes()[..size].to_vec())
            .collect();
        write_npy_bytes(&p, descr, &[4], &bytes).unwrap();
        if descr == "|i1" {
            // 255 as int8 is -1.
            assert!(
                err(load_labels(&p)).contains("label -1 at row 3"),
                "{descr}"
            );
        } else {
            assert_eq!(load_labels(&p).unwrap(), classes, "{descr}");
        }
        write_npy_bytes(&p, descr, &[4, 1], &bytes).unwrap();
        assert_eq!(load_labels(&p).is_ok(), descr != "|i1", "{descr} as (N, 1)");
    }
    write_npy_bytes(&p, "<i4", &[2], &[0, 0, 0, 0, 44, 1, 0, 0]).unwrap();
    assert!(err(load_labels(&p)).contains("label 300 at row 1"));
    write_npy_bytes(&p, "<f4", &[1], &[0; 4]).unwrap();
    assert!(err(load_labels(&p)).contains("not integers"));
    write_npy_bytes(&p, ">i4", &[1], &[0; 4]).unwrap();
    assert!(err(load_labels(&p)).contains("big-endian"));
    write_npy_bytes(&p, "|u1", &[2, 2], &[0; 4]).unwrap();
    assert!(err(load_labels(&p)).contains("one label per item"));
    write_npy_bytes(&p, "|u1", &[4], &[0; 4]).unwrap();
    let mut cut = std::fs::read(&p).unwrap();
    cut.pop();
    std::fs::write(&p, &cut).unwrap();
    assert!(err(load_labels(&p)).contains("truncated"));
}

/// The block scan finds the first bad value wherever it is: at a block or piece boundary, in a
/// short last block, after an earlier bad value in a later block; the parallel scan agrees.
#[test]
fn the_first_non_finite_value_is_found_anywhere() {
    let n = 3 * (1 << 20) + 1500;
    for dtype in [Dtype::F32, Dtype::F16] {
        let bad: Vec<u8> = match dtype {
            Dtype::F16 => 0xfc00u16.to_le_bytes().to_vec(), // -infinity
            _ => f32::NAN.to_le_bytes().to_vec(),
        };
        let mut bytes = vec![0u8; n * dtype.size()];
        assert_eq!(first_non_finite(dtype, &bytes), None);
        assert_eq!(first_non_finite_par(dtype, &bytes), None);
        for at in [0, 1023, 1024, 1 << 20, (1 << 20) + 5, n - 1] {
            let mut b = bytes.clone();
            b[at * dtype.size()..(at + 1) * dtype.size()].copy_from_slice(&bad);
            // A second bad value later never hides the first.
            b[(n - 1) * dtype.size()..].copy_from_slice(&bad);
            assert_eq!(first_non_finite(dtype, &b), Some(at), "{dtype:?} at {at}");
            assert_eq!(
                first_non_finite_par(dtype, &b),
                Some(at),
                "{dtype:?} at {at}"
            );
        }
        bytes.truncate(0);
        assert_eq!(first_non_finite(dtype, &bytes), None);
    }
    assert_eq!(first_non_finite(Dtype::U8, &[255; 10]), None);
}
