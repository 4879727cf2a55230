//! Every WGSL file under shaders/ parses and validates with naga (the version wgpu uses), so a
//! broken shader fails `cargo test`, not a user's run. The structs and constants shared with
//! Rust (src/backend/gpu/layout.rs) are checked against the shaders' own declarations.

use microtask::backend::gpu::layout::{
    ClassifyParams, GpuTaskLabel, GpuVote, TallyParams, SOFTMAX_GROUP, TALLY_GROUP, TILE_ITEMS,
    TILE_K, TILE_ROWS,
};
use microtask::backend::gpu::{classify, tally};
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

#[test]
fn every_shader_parses_and_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("shaders/ exists") {
        let path = entry.expect("readable entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("wgsl") {
            continue;
        }
        let name = path.display().to_string();
        let source = std::fs::read_to_string(&path).expect("readable shader");
        let module = parse(&name, &source);
        validate(&name, &source, &module);
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

#[test]
fn compiled_in_sources_are_the_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let on_disk = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    assert_eq!(classify::SHADER, on_disk("classify.wgsl"));
    assert_eq!(tally::SHADER, on_disk("tally.wgsl"));
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

fn const_u32(module: &naga::Module, name: &str) -> u32 {
    let c = module
        .constants
        .iter()
        .find(|(_, c)| c.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("const {name} not found"))
        .1;
    match module.global_expressions[c.init] {
        naga::Expression::Literal(naga::Literal::U32(v)) => v,
        ref other => panic!("const {name} is {other:?}, expected a u32 literal"),
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
    let m = parse("classify.wgsl", classify::SHADER);
    assert_eq!(
        struct_size(&m, "ClassifyParams") as usize,
        std::mem::size_of::<ClassifyParams>()
    );
    assert_eq!(const_u32(&m, "TILE_ITEMS"), TILE_ITEMS);
    assert_eq!(const_u32(&m, "TILE_ROWS"), TILE_ROWS);
    assert_eq!(const_u32(&m, "TILE_K"), TILE_K);
    assert_eq!(const_u32(&m, "TILE_WORDS") * 4, TILE_K);
    assert_eq!(const_u32(&m, "STEPS_PER_BLOCK") * TILE_K, 256);
    assert_eq!(const_u32(&m, "SOFTMAX_GROUP"), SOFTMAX_GROUP);
    // 64 invocations, each 4 items x 4 rows of the tile.
    let wg = workgroup(&m, "logits");
    assert_eq!(wg[0] * 4, TILE_ITEMS);
    assert_eq!(wg[1] * 4, TILE_ROWS);
    assert_eq!(workgroup(&m, "softmax"), [SOFTMAX_GROUP, 1, 1]);
}

#[test]
fn tally_layout_matches_rust() {
    let m = parse("tally.wgsl", tally::SHADER);
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
    let scale = m
        .constants
        .iter()
        .find(|(_, c)| c.name.as_deref() == Some("CONF_FIXED_SCALE"))
        .expect("CONF_FIXED_SCALE")
        .1;
    assert!(matches!(
        m.global_expressions[scale.init],
        naga::Expression::Literal(naga::Literal::F32(v)) if v == microtask::backend::CONF_FIXED_SCALE
    ));
}
