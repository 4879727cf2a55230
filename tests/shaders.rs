//! Every shader, as the device compiles it (the prelude generated from
//! src/backend/gpu/layout.rs, then the file under shaders/), parses and validates with naga (the
//! version wgpu uses), so a broken shader fails `cargo test`, not a user's run. The structs and
//! constants shared with Rust are checked here, and only here, against naga's view of the
//! composed shaders: struct sizes and field offsets as naga lays them out, constants as naga
//! evaluates them, workgroup sizes as the entry points declare them.

use microtask::backend::gpu::layout::{
    self, ClassifyParams, DsParams, GpuTaskLabel, GpuVote, Shader, TallyParams, WgslStruct,
    WgslValue, DS_GROUP, REG_GROUP, REG_ITEMS, REG_ROWS, SHADERS, SOFTMAX_GROUP, TALLY_GROUP,
    TILE_ITEMS, TILE_K, TILE_ROWS, TOTALS_BLOCK,
};
use microtask::backend::NO_CLAMP;
use std::collections::BTreeSet;
use std::path::Path;

fn parse(name: &str, source: &str) -> naga::Module {
    naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("{name} does not parse:\n{}", e.emit_to_string(source)))
}

fn validate(name: &str, source: &str, module: &naga::Module) {
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::empty(),
    )
    .validate(module)
    .unwrap_or_else(|e| panic!("{name} does not validate:\n{}", e.emit_to_string(source)));
}

/// The shader as the device gets it, parsed and validated.
fn composed(shader: &Shader) -> naga::Module {
    let source = shader.source();
    let module = parse(shader.file, &source);
    validate(shader.file, &source, &module);
    module
}

#[test]
fn every_shader_parses_and_validates() {
    let mut checked = Vec::new();
    for shader in SHADERS {
        let module = composed(shader);
        let name = shader.file;
        assert!(
            module
                .entry_points
                .iter()
                .all(|e| e.stage == naga::ShaderStage::Compute),
            "{name}: only compute entry points expected"
        );
        checked.push(name);
    }
    println!("validated: {checked:?}");
    assert!(checked.len() >= 2, "classify.wgsl and tally.wgsl at least");
}

/// A WGSL file the backend does not compile would escape every check here.
#[test]
fn every_shader_file_is_compiled_in() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("shaders/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("wgsl"))
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let compiled: BTreeSet<String> = SHADERS.iter().map(|s| s.file.to_string()).collect();
    assert_eq!(on_disk, compiled);
}

/// Every constant of every prelude, as naga evaluates it, is the Rust value (f32 to the bit).
#[test]
fn prelude_constants_are_the_rust_values() {
    for shader in SHADERS {
        let m = composed(shader);
        for c in shader.consts {
            let got = constant(&m, c.name);
            match (c.value, got) {
                (WgslValue::U32(want), naga::Literal::U32(v)) => {
                    assert_eq!(v, want, "{}: {}", shader.file, c.name)
                }
                (WgslValue::F32(want), naga::Literal::F32(v)) => {
                    assert_eq!(v.to_bits(), want.to_bits(), "{}: {}", shader.file, c.name)
                }
                (want, got) => panic!("{}: {} is {got:?}, want {want:?}", shader.file, c.name),
            }
        }
    }
}

/// naga's layout of `T`'s WGSL twin (size, then every member's name and offset) is Rust's.
fn assert_same_layout<T: WgslStruct>(module: &naga::Module) {
    let name = T::WGSL_NAME;
    let (members, span) = module
        .types
        .iter()
        .find_map(|(_, t)| match &t.inner {
            naga::TypeInner::Struct { members, span } if t.name.as_deref() == Some(name) => {
                Some((members, *span))
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("struct {name} not found"));
    assert_eq!(span as usize, std::mem::size_of::<T>(), "size of {name}");
    let wgsl: Vec<(&str, usize)> = members
        .iter()
        .map(|m| (m.name.as_deref().unwrap_or("?"), m.offset as usize))
        .collect();
    assert_eq!(wgsl, T::FIELDS, "fields and offsets of {name}");
}

fn struct_size(module: &naga::Module, name: &str) -> u32 {
    module
        .types
        .iter()
        .find_map(|(_, t)| match &t.inner {
            naga::TypeInner::Struct { span, .. } if t.name.as_deref() == Some(name) => Some(*span),
            _ => None,
        })
        .unwrap_or_else(|| panic!("struct {name} not found"))
}

fn constant(module: &naga::Module, name: &str) -> naga::Literal {
    let c = module
        .constants
        .iter()
        .find(|(_, c)| c.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("const {name} not found"))
        .1;
    match module.global_expressions[c.init] {
        naga::Expression::Literal(l) => l,
        ref other => panic!("const {name} is {other:?}, expected a literal"),
    }
}

fn const_u32(module: &naga::Module, name: &str) -> u32 {
    match constant(module, name) {
        naga::Literal::U32(v) => v,
        other => panic!("const {name} is {other:?}, expected a u32"),
    }
}

fn workgroup(module: &naga::Module, entry: &str) -> [u32; 3] {
    module
        .entry_points
        .iter()
        .find(|e| e.name == entry)
        .unwrap_or_else(|| panic!("entry point {entry} not found"))
        .workgroup_size
}

#[test]
fn classify_layout_matches_rust() {
    let m = composed(&layout::CLASSIFY);
    assert_same_layout::<ClassifyParams>(&m);
    assert_eq!(
        struct_size(&m, "ClassifyParams") as usize,
        std::mem::size_of::<ClassifyParams>()
    );
    assert_eq!(const_u32(&m, "SOFTMAX_GROUP"), SOFTMAX_GROUP);
    assert_eq!(workgroup(&m, "softmax"), [SOFTMAX_GROUP, 1, 1]);
}

#[test]
fn tally_layout_matches_rust() {
    let m = composed(&layout::TALLY);
    assert_same_layout::<TallyParams>(&m);
    assert_same_layout::<GpuVote>(&m);
    assert_same_layout::<GpuTaskLabel>(&m);
    assert_eq!(
        struct_size(&m, "TallyParams") as usize,
        std::mem::size_of::<TallyParams>()
    );
    assert_eq!(
        struct_size(&m, "Vote") as usize,
        std::mem::size_of::<GpuVote>()
    );
    assert_eq!(
        struct_size(&m, "TaskOut") as usize,
        std::mem::size_of::<GpuTaskLabel>()
    );
    assert_eq!(const_u32(&m, "TALLY_GROUP"), TALLY_GROUP);
    assert_eq!(workgroup(&m, "accumulate"), [TALLY_GROUP, 1, 1]);
    assert_eq!(workgroup(&m, "pick"), [TALLY_GROUP, 1, 1]);
    assert!(matches!(
        constant(&m, "CONF_FIXED_SCALE"),
        naga::Literal::F32(v) if v == microtask::backend::CONF_FIXED_SCALE
    ));
}

#[test]
fn dawid_skene_layout_matches_rust() {
    let m = composed(&layout::DAWID_SKENE);
    assert_same_layout::<DsParams>(&m);
    assert_eq!(
        struct_size(&m, "DsParams") as usize,
        std::mem::size_of::<DsParams>()
    );
    assert_eq!(const_u32(&m, "DS_GROUP"), DS_GROUP);
    assert_eq!(const_u32(&m, "TOTALS_BLOCK"), TOTALS_BLOCK);
    assert_eq!(const_u32(&m, "NO_CLAMP"), NO_CLAMP);
    for entry in ["e_step", "m_step", "totals"] {
        assert_eq!(workgroup(&m, entry), [DS_GROUP, 1, 1], "{entry}");
    }
}

#[test]
fn logits_kernels_match_the_rust_constants() {
    for (shader, per_word) in [
        (&layout::LOGITS_U8, layout::U8_PER_WORD),
        (&layout::LOGITS_F16, layout::F16_PER_WORD),
        (&layout::LOGITS_F32, layout::F32_PER_WORD),
    ] {
        let m = composed(shader);
        assert_same_layout::<ClassifyParams>(&m);
        assert_eq!(const_u32(&m, "PER_WORD"), per_word);
        assert_eq!(const_u32(&m, "TILE_ITEMS"), TILE_ITEMS);
        assert_eq!(const_u32(&m, "TILE_ROWS"), TILE_ROWS);
        assert_eq!(const_u32(&m, "TILE_K"), TILE_K);
        assert_eq!(const_u32(&m, "TILE_WORDS") * per_word, TILE_K);
        assert_eq!(const_u32(&m, "WORDS_PER_BLOCK") * per_word, 256);
        assert_eq!(const_u32(&m, "STEPS_PER_BLOCK") * TILE_K, 256);
        // Every item word of a step is loaded by exactly one task of the 64 invocations.
        assert_eq!(const_u32(&m, "ITEM_TASKS") * 64, 16 * TILE_K / per_word);
        // 64 invocations, each 4 items x 4 rows of the tile.
        let wg = workgroup(&m, "logits");
        assert_eq!((wg[0] * 4, wg[1] * 4), (TILE_ITEMS, TILE_ROWS));
        assert_eq!(const_u32(&m, "REG_ITEMS"), REG_ITEMS);
        assert_eq!(const_u32(&m, "REG_ROWS"), REG_ROWS);
        assert_eq!(const_u32(&m, "REG_GROUP"), REG_GROUP);
        assert_eq!(workgroup(&m, "logits_regs"), [REG_GROUP, 1, 1]);
    }
    // The register kernel's block holds REG_ITEMS x REG_ROWS logits: 8 x (4 + 4 + 2).
    assert_eq!((REG_ITEMS, REG_ROWS), (8, 10));
}
