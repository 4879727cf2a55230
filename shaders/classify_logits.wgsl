// The logits of a batch of items for every worker of an ensemble: L[i, j] = scale * sum_k
// x[i, k] * W[j, k] (j = worker * classes + class), compiled once per item type (u8 pixels with
// scale 1/255; f16 or f32 features with scale 1, taken as given). GPU twin of the CPU's
// src/backend/cpu/kernel.rs; driven by src/backend/gpu/classify.rs, and followed by
// classify.wgsl's `softmax` on the logits written here.
//
// Entry points, either run before `softmax`:
//   `logits`:      L, tiled in workgroup memory. The kernel for hardware GPUs.
//   `logits_regs`: the same L, register-blocked for CPU implementations of the API (lavapipe,
//                  llvmpipe): no workgroup memory and no barriers; each invocation keeps 8 items
//                  x 10 rows of logits in registers and reads the weights at addresses that are
//                  the same for every invocation of the workgroup (one scalar load, broadcast).
//                  Either kernel computes bit-identical logits.
//
// Items arrive packed PER_WORD values to a u32 word (little-endian: value PER_WORD * w + b is
// part b of word w): four u8 pixels, two halves (as NumPy writes `<f2`; converted exactly here)
// or one float (bitcast). A row of `features` values is padded with zeros to `words` words.
//
// Summation order (both kernels, hence the same bits): per logit, a fused multiply-add chain from
// zero over the features in ascending order, in blocks of KBLOCK = 256; each block sum s_b is
// scaled into the total as t = s_0 * scale, then t = fma(scale, s_b, t) (with scale 1 that is
// t = s_0, then t + s_b, exactly). That is what the CPU's portable kernel (ndarray ->
// matrixmultiply sgemm with FMA, k blocks of 256) does; the CPU's AVX2/AVX-512 kernels sum 8 or
// 16 strided lanes instead, which moves a logit by an ulp or so: labels can only differ where two
// classes are within rounding of each other (near-ties).

// `ClassifyParams`, TILE_ITEMS, TILE_ROWS, TILE_K, REG_ITEMS, REG_ROWS, REG_GROUP and PER_WORD come
// from the prelude generated from src/backend/gpu/layout.rs.

// Features per block of the sum.
const KBLOCK: u32 = 256u;
// Words of one TILE_K step.
const TILE_WORDS: u32 = TILE_K / PER_WORD;
// Steps per KBLOCK.
const STEPS_PER_BLOCK: u32 = KBLOCK / TILE_K;
// Words per KBLOCK.
const WORDS_PER_BLOCK: u32 = KBLOCK / PER_WORD;
// Item loads per invocation of `logits` and step: 16 item groups x TILE_WORDS words, over 64.
const ITEM_TASKS: u32 = 16u * TILE_WORDS / 64u;

@group(0) @binding(0) var<uniform> params: ClassifyParams;
@group(0) @binding(1) var<storage, read> items: array<u32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> logits_out: array<f32>;
// The weights for `logits_regs`, by chunks of REG_ROWS rows: weight_t[(c * feats + k) * 3 + g]
// holds rows c * REG_ROWS + 4g .. 4g + 3 (g = 2: two rows, then zeros) of feature k, with feats
// = words * PER_WORD (features padded with zero weights to whole words, rows to whole chunks).
@group(0) @binding(7) var<storage, read> weight_t: array<vec4<f32>>;

// xs[k * 16 + g] holds feature k of items 4g .. 4g + 3 of the tile.
var<workgroup> xs: array<vec4<f32>, 512>;
// ws[k * 4 + h] holds feature k of weight rows 4h .. 4h + 3 of the tile.
var<workgroup> ws: array<vec4<f32>, 128>;

// IEEE half-precision bit patterns (the low 16 bits) to f32, exactly: subnormals, infinities and
// NaN included. Integer operations only (unpack2x16float needs a capability not every adapter
// offers: Mesa's llvmpipe only with native f16).
fn halves_to_f32(h: vec4<u32>) -> vec4<f32> {
    let sign = (h & vec4<u32>(0x8000u)) << vec4<u32>(16u);
    let e = (h >> vec4<u32>(10u)) & vec4<u32>(0x1fu);
    let m = h & vec4<u32>(0x3ffu);
    // Normal: rebias the exponent from 15 to 127 and widen the mantissa.
    let normal = sign | ((e + vec4<u32>(112u)) << vec4<u32>(23u)) | (m << vec4<u32>(13u));
    // Infinity and NaN keep their mantissa.
    let special = sign | vec4<u32>(0x7f800000u) | (m << vec4<u32>(13u));
    // Zero and subnormal: m * 2^-24, a normal f32.
    let small = sign | bitcast<vec4<u32>>(ldexp(vec4<f32>(m), vec4<i32>(-24)));
    let bits = select(select(normal, special, e == vec4<u32>(31u)), small, e == vec4<u32>(0u));
    return bitcast<vec4<f32>>(bits);
}

// Value b of each of four words.
fn values(p: vec4<u32>, b: u32) -> vec4<f32> {
    if (PER_WORD == 1u) {
        return bitcast<vec4<f32>>(p);
    }
    if (PER_WORD == 4u) {
        return vec4<f32>((p >> vec4<u32>(8u * b)) & vec4<u32>(0xffu));
    }
    return halves_to_f32((p >> vec4<u32>(16u * b)) & vec4<u32>(0xffffu));
}

// 64 invocations; invocation (gx, gy) computes items 4gx .. 4gx + 3 x rows 4gy .. 4gy + 3 of the
// 64 x 16 output tile.
@compute @workgroup_size(TILE_ITEMS / 4u, TILE_ROWS / 4u, 1)
fn logits(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    let item0 = wid.x * TILE_ITEMS;
    let row0 = wid.y * TILE_ROWS;
    let n = params.n_items;
    let words = params.words;
    let features = params.features;
    let rows = params.rows;

    // acc: sums of the current KBLOCK; tot: the logits so far. accA[b] = item 4gx + A, row 4gy + b.
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var tot0 = vec4<f32>(0.0);
    var tot1 = vec4<f32>(0.0);
    var tot2 = vec4<f32>(0.0);
    var tot3 = vec4<f32>(0.0);
    var first_block = true;

    let steps = (words + TILE_WORDS - 1u) / TILE_WORDS;
    for (var s = 0u; s < steps; s++) {
        let word0 = s * TILE_WORDS;
        // Items: each task reads one word of four consecutive items and writes PER_WORD features
        // of the group.
        for (var t = 0u; t < ITEM_TASKS; t++) {
            let task = lidx + t * 64u;
            let w = task % TILE_WORDS;
            let g = task / TILE_WORDS;
            let gw = word0 + w;
            var p = vec4<u32>(0u);
            if (gw < words) {
                for (var a = 0u; a < 4u; a++) {
                    let item = item0 + 4u * g + a;
                    if (item < n) {
                        p[a] = items[item * words + gw];
                    }
                }
            }
            for (var b = 0u; b < PER_WORD; b++) {
                xs[(PER_WORD * w + b) * 16u + g] = values(p, b);
            }
        }
        // Weights: 32 features x 4 row groups = 128 tasks, 2 per invocation.
        for (var t = 0u; t < 2u; t++) {
            let task = lidx + t * 64u;
            let k = task % TILE_K;
            let h = task / TILE_K;
            let gk = s * TILE_K + k;
            var v = vec4<f32>(0.0);
            if (gk < features) {
                for (var b = 0u; b < 4u; b++) {
                    let row = row0 + 4u * h + b;
                    if (row < rows) {
                        v[b] = weight[row * features + gk];
                    }
                }
            }
            ws[k * 4u + h] = v;
        }
        workgroupBarrier();

        for (var k = 0u; k < TILE_K; k++) {
            let x = xs[k * 16u + lid.x];
            let wv = ws[k * 4u + lid.y];
            acc0 = fma(vec4<f32>(x.x), wv, acc0);
            acc1 = fma(vec4<f32>(x.y), wv, acc1);
            acc2 = fma(vec4<f32>(x.z), wv, acc2);
            acc3 = fma(vec4<f32>(x.w), wv, acc3);
        }
        workgroupBarrier();

        // Fold the block sum into the total at every KBLOCK boundary and at the end.
        if ((s + 1u) % STEPS_PER_BLOCK == 0u || s + 1u == steps) {
            let scale = vec4<f32>(params.scale);
            if (first_block) {
                tot0 = acc0 * scale;
                tot1 = acc1 * scale;
                tot2 = acc2 * scale;
                tot3 = acc3 * scale;
                first_block = false;
            } else {
                tot0 = fma(scale, acc0, tot0);
                tot1 = fma(scale, acc1, tot1);
                tot2 = fma(scale, acc2, tot2);
                tot3 = fma(scale, acc3, tot3);
            }
            acc0 = vec4<f32>(0.0);
            acc1 = vec4<f32>(0.0);
            acc2 = vec4<f32>(0.0);
            acc3 = vec4<f32>(0.0);
        }
    }

    let i = item0 + 4u * lid.x;
    let j = row0 + 4u * lid.y;
    for (var b = 0u; b < 4u; b++) {
        if (j + b < rows) {
            if (i < n) {
                logits_out[i * rows + j + b] = tot0[b];
            }
            if (i + 1u < n) {
                logits_out[(i + 1u) * rows + j + b] = tot1[b];
            }
            if (i + 2u < n) {
                logits_out[(i + 2u) * rows + j + b] = tot2[b];
            }
            if (i + 3u < n) {
                logits_out[(i + 3u) * rows + j + b] = tot3[b];
            }
        }
    }
}

// REG_ROWS = 10 logits of one item (rows 0-3, 4-7, 8-9 of a chunk).
struct Rows {
    lo: vec4<f32>,
    mid: vec4<f32>,
    hi: vec2<f32>,
}

// The logits of the REG_ITEMS = 8 items of one `logits_regs` invocation.
struct RegBlock {
    a0: Rows,
    a1: Rows,
    a2: Rows,
    a3: Rows,
    a4: Rows,
    a5: Rows,
    a6: Rows,
    a7: Rows,
}

const ZERO_ROWS = Rows(vec4<f32>(0.0), vec4<f32>(0.0), vec2<f32>(0.0));
const ZERO_BLOCK = RegBlock(
    ZERO_ROWS, ZERO_ROWS, ZERO_ROWS, ZERO_ROWS, ZERO_ROWS, ZERO_ROWS, ZERO_ROWS, ZERO_ROWS,
);

// acc + x * w, row by row (one fused multiply-add per logit, as in `logits`).
fn fma_rows(x: f32, w: Rows, acc: Rows) -> Rows {
    return Rows(
        fma(vec4<f32>(x), w.lo, acc.lo),
        fma(vec4<f32>(x), w.mid, acc.mid),
        fma(vec2<f32>(x), w.hi, acc.hi),
    );
}

// One feature of the 8 items (xl: items 0-3, xh: items 4-7) into the 8 x 10 block; the weights
// of the feature start at weight_t[at].
fn reg_feature(at: u32, xl: vec4<f32>, xh: vec4<f32>, acc: RegBlock) -> RegBlock {
    let w2 = weight_t[at + 2u];
    let w = Rows(weight_t[at], weight_t[at + 1u], w2.xy);
    return RegBlock(
        fma_rows(xl.x, w, acc.a0),
        fma_rows(xl.y, w, acc.a1),
        fma_rows(xl.z, w, acc.a2),
        fma_rows(xl.w, w, acc.a3),
        fma_rows(xh.x, w, acc.a4),
        fma_rows(xh.y, w, acc.a5),
        fma_rows(xh.z, w, acc.a6),
        fma_rows(xh.w, w, acc.a7),
    );
}

// The KBLOCK fold of `logits`: total = block * s for the first block, then
// total = fma(s, block, total).
fn fold_rows(first: bool, acc: Rows, tot: Rows, s: f32) -> Rows {
    if (first) {
        return Rows(acc.lo * s, acc.mid * s, acc.hi * s);
    }
    return Rows(
        fma(vec4<f32>(s), acc.lo, tot.lo),
        fma(vec4<f32>(s), acc.mid, tot.mid),
        fma(vec2<f32>(s), acc.hi, tot.hi),
    );
}

fn fold_block(first: bool, a: RegBlock, t: RegBlock, s: f32) -> RegBlock {
    return RegBlock(
        fold_rows(first, a.a0, t.a0, s),
        fold_rows(first, a.a1, t.a1, s),
        fold_rows(first, a.a2, t.a2, s),
        fold_rows(first, a.a3, t.a3, s),
        fold_rows(first, a.a4, t.a4, s),
        fold_rows(first, a.a5, t.a5, s),
        fold_rows(first, a.a6, t.a6, s),
        fold_rows(first, a.a7, t.a7, s),
    );
}

// Writes the logits of item i, rows row0 .. row0 + 9, skipping items and rows past the end.
fn store_rows(i: u32, row0: u32, t: Rows) {
    let rows = params.rows;
    if (i >= params.n_items) {
        return;
    }
    let v = array<f32, 10>(
        t.lo.x, t.lo.y, t.lo.z, t.lo.w, t.mid.x, t.mid.y, t.mid.z, t.mid.w, t.hi.x, t.hi.y,
    );
    for (var r = 0u; r < REG_ROWS; r++) {
        if (row0 + r < rows) {
            logits_out[i * rows + row0 + r] = v[r];
        }
    }
}

// Invocation g of workgroup (x, c): items 8 * g .. 8 * g + 7 (global g) x rows
// 10c .. 10c + 9. Same sums in the same order as `logits`, so the same bits.
@compute @workgroup_size(REG_GROUP, 1, 1)
fn logits_regs(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let words = params.words;
    let chunk = wid.y;
    let i0 = gid.x * REG_ITEMS;
    // Items past the end read the last item (in bounds) and are not written.
    let last = vec4<u32>(params.n_items - 1u);
    let base_lo = min(vec4<u32>(i0) + vec4<u32>(0u, 1u, 2u, 3u), last) * words;
    let base_hi = min(vec4<u32>(i0) + vec4<u32>(4u, 5u, 6u, 7u), last) * words;
    // 3 vec4 per feature, PER_WORD features per word.
    let wbase = chunk * words * PER_WORD * 3u;
    var acc = ZERO_BLOCK;
    var tot = ZERO_BLOCK;
    var first = true;
    for (var w = 0u; w < words; w++) {
        let lo = vec4<u32>(
            items[base_lo.x + w], items[base_lo.y + w], items[base_lo.z + w], items[base_lo.w + w],
        );
        let hi = vec4<u32>(
            items[base_hi.x + w], items[base_hi.y + w], items[base_hi.z + w], items[base_hi.w + w],
        );
        let at = wbase + 3u * PER_WORD * w;
        for (var b = 0u; b < PER_WORD; b++) {
            acc = reg_feature(at + 3u * b, values(lo, b), values(hi, b), acc);
        }
        if ((w + 1u) % WORDS_PER_BLOCK == 0u || w + 1u == words) {
            tot = fold_block(first, acc, tot, params.scale);
            acc = ZERO_BLOCK;
            first = false;
        }
    }
    let row0 = chunk * REG_ROWS;
    store_rows(i0, row0, tot.a0);
    store_rows(i0 + 1u, row0, tot.a1);
    store_rows(i0 + 2u, row0, tot.a2);
    store_rows(i0 + 3u, row0, tot.a3);
    store_rows(i0 + 4u, row0, tot.a4);
    store_rows(i0 + 5u, row0, tot.a5);
    store_rows(i0 + 6u, row0, tot.a6);
    store_rows(i0 + 7u, row0, tot.a7);
}
