//! Everything the WGSL kernels share with Rust: tile and workgroup sizes, uniform parameter
//! blocks, vote and result records. This file is the one source of both sides: each shader under
//! `shaders/` declares none of these names and is compiled behind a prelude generated from the
//! definitions here ([`Shader::source`]). `tests/shaders.rs` checks the Rust layouts against
//! naga's view of the composed shaders.

use crate::backend::answers::NO_CLAMP;
use crate::backend::CONF_FIXED_SCALE;
use bytemuck::{Pod, Zeroable};

/// Items per `logits` workgroup (x dimension of the dispatch).
pub const TILE_ITEMS: u32 = 64;
/// Weight rows per `logits` workgroup (y dimension of the dispatch).
pub const TILE_ROWS: u32 = 16;
/// Features per step of the `logits` kernel (a multiple of 4: whole packed words).
pub const TILE_K: u32 = 32;
/// Items per invocation of `logits_regs` (the register-blocked kernel for software adapters).
pub const REG_ITEMS: u32 = 8;
/// Weight rows per `logits_regs` workgroup (one chunk of rows per y of the dispatch).
pub const REG_ROWS: u32 = 10;
/// Invocations per `logits_regs` workgroup.
pub const REG_GROUP: u32 = 16;
/// Invocations per `softmax` workgroup.
pub const SOFTMAX_GROUP: u32 = 64;
/// Invocations per `accumulate`/`pick` workgroup.
pub const TALLY_GROUP: u32 = 64;
/// Invocations per workgroup of every Dawid-Skene kernel.
pub const DS_GROUP: u32 = 64;
/// Tasks per block of the Dawid-Skene `totals` kernel's partial sums.
pub const TOTALS_BLOCK: u32 = 256;

/// Scalar types that are spelled and laid out the same in Rust and WGSL (4 bytes, 4-aligned).
pub trait WgslScalar: Pod {}
impl WgslScalar for u32 {}
impl WgslScalar for i32 {}
impl WgslScalar for f32 {}

/// A `#[repr(C)]` struct with a WGSL twin generated from the same definition.
pub trait WgslStruct: Pod {
    /// The struct's name in WGSL.
    const WGSL_NAME: &'static str;
    /// The WGSL declaration.
    const WGSL: &'static str;
    /// Every field with its byte offset in Rust, in declaration order.
    const FIELDS: &'static [(&'static str, usize)];
}

/// Defines a `#[repr(C)]` struct of [`WgslScalar`] fields and its WGSL declaration (named
/// `$wgsl`) from one field list.
macro_rules! wgsl_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident as $wgsl:literal {
            $( $(#[$fmeta:meta])* pub $field:ident: $ty:ident, )*
        }
    ) => {
        $(#[$meta])*
        #[repr(C)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl WgslStruct for $name {
            const WGSL_NAME: &'static str = $wgsl;
            const WGSL: &'static str = concat!(
                "struct ", $wgsl, " {\n",
                $( "    ", stringify!($field), ": ", stringify!($ty), ",\n", )*
                "}\n"
            );
            const FIELDS: &'static [(&'static str, usize)] =
                &[$( (stringify!($field), std::mem::offset_of!($name, $field)), )*];
        }

        // Only scalars whose Rust and WGSL spellings and layouts agree.
        const _: fn() = || {
            fn scalar<T: WgslScalar>() {}
            $( scalar::<$ty>(); )*
        };
    };
}

wgsl_struct! {
    /// Uniform block of the classify kernels.
    #[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
    pub struct ClassifyParams as "ClassifyParams" {
        pub n_items: u32,
        pub features: u32,
        /// u32 words per packed item row: `features.div_ceil(4)`.
        pub words: u32,
        /// `workers * classes`.
        pub rows: u32,
        pub classes: u32,
        pub workers: u32,
        /// The logits' scale: `1.0 / 255.0` for u8 pixels (as the CPU twin computes it, passed
        /// in so both sides use the same bits), 1 for features (taken as given).
        pub scale: f32,
        pub _pad: u32,
    }
}

wgsl_struct! {
    /// Uniform block of the tally kernels.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
    pub struct TallyParams as "TallyParams" {
        pub n_votes: u32,
        pub n_tasks: u32,
        pub classes: u32,
        pub _pad: u32,
    }
}

wgsl_struct! {
    /// One answer as the tally kernel reads it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
    pub struct GpuVote as "Vote" {
        /// Task id relative to the first task of the chunk.
        pub task: u32,
        pub label: u32,
        /// `f32::to_bits` of the confidence (a NaN must reach the shader as a NaN).
        pub conf_bits: u32,
    }
}

wgsl_struct! {
    /// One tallied task as the tally kernel writes it.
    #[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
    pub struct GpuTaskLabel as "TaskOut" {
        pub label: u32,
        pub confidence: f32,
        pub answers: u32,
    }
}

wgsl_struct! {
    /// Uniform block of the Dawid-Skene kernels.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
    pub struct DsParams as "DsParams" {
        pub tasks: u32,
        pub classes: u32,
        pub workers: u32,
        /// Offset of the clamp array in the task buffer: `tasks + 1`.
        pub clamp_offset: u32,
        /// Offset of the log-likelihood terms in the posterior buffer: `tasks * classes`.
        pub ll_offset: u32,
        /// Offset of the answer entries in the row buffer: `workers * classes + 1`.
        pub entry_offset: u32,
        /// Blocks of [`TOTALS_BLOCK`] tasks.
        pub blocks: u32,
        pub _pad: u32,
    }
}

/// The value of a constant shared with WGSL.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WgslValue {
    U32(u32),
    F32(f32),
}

/// A constant shared with WGSL: its Rust name and value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WgslConst {
    pub name: &'static str,
    pub value: WgslValue,
}

impl WgslConst {
    /// `const NAME: u32 = 64u;`; f32 values are written with the digits that read back as the
    /// same f32 and an `f` suffix, so WGSL gets the same bits.
    fn declaration(&self) -> String {
        match self.value {
            WgslValue::U32(v) => format!("const {}: u32 = {v}u;\n", self.name),
            WgslValue::F32(v) => {
                assert!(v.is_finite(), "{}: WGSL has no literal for {v}", self.name);
                format!("const {}: f32 = {v:?}f;\n", self.name)
            }
        }
    }
}

/// `wgsl_const!(u32 NAME)`: the constant `NAME` under its own name.
macro_rules! wgsl_const {
    (u32 $name:ident) => {
        WgslConst {
            name: stringify!($name),
            value: WgslValue::U32($name),
        }
    };
    (f32 $name:ident) => {
        WgslConst {
            name: stringify!($name),
            value: WgslValue::F32($name),
        }
    };
}

/// A WGSL file and what its prelude declares for it.
#[derive(Debug)]
pub struct Shader {
    /// The file under `shaders/`, for messages.
    pub file: &'static str,
    /// The file as written: it uses the prelude's names and declares none of them.
    pub body: &'static str,
    /// WGSL declarations of the shared structs it uses.
    pub structs: &'static [&'static str],
    pub consts: &'static [WgslConst],
}

impl Shader {
    /// The declarations generated from the Rust definitions.
    pub fn prelude(&self) -> String {
        let mut s = format!(
            "// Generated from src/backend/gpu/layout.rs: the constants and structs {} shares \
             with Rust.\n",
            self.file
        );
        for c in self.consts {
            s += &c.declaration();
        }
        for st in self.structs {
            s += st;
        }
        s + "\n"
    }

    /// What the device compiles: the prelude, then the file.
    pub fn source(&self) -> String {
        self.prelude() + self.body
    }
}

/// `shaders/classify.wgsl`: the softmax.
pub const CLASSIFY: Shader = Shader {
    file: "classify.wgsl",
    body: include_str!("../../../shaders/classify.wgsl"),
    structs: &[ClassifyParams::WGSL],
    consts: &[wgsl_const!(u32 SOFTMAX_GROUP)],
};

/// Values per packed word of the logits kernels for u8 pixels.
pub const U8_PER_WORD: u32 = 4;
/// Values per packed word of the logits kernels for f16 features (two halves).
pub const F16_PER_WORD: u32 = 2;
/// Values per packed word of the logits kernels for f32 features.
pub const F32_PER_WORD: u32 = 1;

/// `shaders/classify_logits.wgsl` for items packed `per_word` values a word (`PER_WORD`).
const fn classify_logits(per_word: &'static [WgslConst]) -> Shader {
    Shader {
        file: "classify_logits.wgsl",
        body: include_str!("../../../shaders/classify_logits.wgsl"),
        structs: &[ClassifyParams::WGSL],
        consts: per_word,
    }
}

/// The constants of the logits kernels, with `PER_WORD` last.
macro_rules! logits_consts {
    ($per_word:ident) => {
        &[
            wgsl_const!(u32 TILE_ITEMS),
            wgsl_const!(u32 TILE_ROWS),
            wgsl_const!(u32 TILE_K),
            wgsl_const!(u32 REG_ITEMS),
            wgsl_const!(u32 REG_ROWS),
            wgsl_const!(u32 REG_GROUP),
            WgslConst {
                name: "PER_WORD",
                value: WgslValue::U32($per_word),
            },
        ]
    };
}

/// `shaders/classify_logits.wgsl` on u8 pixels, four to a word.
pub const LOGITS_U8: Shader = classify_logits(logits_consts!(U8_PER_WORD));

/// `shaders/classify_logits.wgsl` on f16 features, two to a word.
pub const LOGITS_F16: Shader = classify_logits(logits_consts!(F16_PER_WORD));

/// `shaders/classify_logits.wgsl` on f32 features, one to a word.
pub const LOGITS_F32: Shader = classify_logits(logits_consts!(F32_PER_WORD));

/// `shaders/tally.wgsl`.
pub const TALLY: Shader = Shader {
    file: "tally.wgsl",
    body: include_str!("../../../shaders/tally.wgsl"),
    structs: &[TallyParams::WGSL, GpuVote::WGSL, GpuTaskLabel::WGSL],
    consts: &[
        wgsl_const!(u32 TALLY_GROUP),
        wgsl_const!(f32 CONF_FIXED_SCALE),
    ],
};

/// `shaders/dawid_skene.wgsl`.
pub const DAWID_SKENE: Shader = Shader {
    file: "dawid_skene.wgsl",
    body: include_str!("../../../shaders/dawid_skene.wgsl"),
    structs: &[DsParams::WGSL],
    consts: &[
        wgsl_const!(u32 DS_GROUP),
        wgsl_const!(u32 TOTALS_BLOCK),
        wgsl_const!(u32 NO_CLAMP),
    ],
};

/// Every shader the backend compiles.
pub const SHADERS: [&Shader; 6] = [
    &CLASSIFY,
    &LOGITS_U8,
    &LOGITS_F16,
    &LOGITS_F32,
    &TALLY,
    &DAWID_SKENE,
];

/// Splits `groups` workgroups into an `(x, y)` dispatch with `x <= max_per_dim`; the kernels
/// recover the linear index as `gid.x + gid.y * x * group_size`. Invocations past the end see an
/// index beyond the data and return.
pub fn dispatch_2d(groups: u32, max_per_dim: u32) -> (u32, u32) {
    let max = max_per_dim.max(1);
    if groups <= max {
        (groups.max(1), 1)
    } else {
        (max, groups.div_ceil(max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatch_2d_covers_every_group() {
        assert_eq!(dispatch_2d(0, 65535), (1, 1));
        assert_eq!(dispatch_2d(10, 65535), (10, 1));
        let (x, y) = dispatch_2d(200_000, 65535);
        assert!(x <= 65535 && x as u64 * y as u64 >= 200_000);
    }
}
