// Dense softmax classification of a batch of items by every worker of an ensemble.
// GPU twin of src/backend/cpu/classify.rs; driven by src/backend/gpu/classify.rs.
//
// Entry points, run one after the other in the same compute pass:
//   `logits`:  L[i, j] = (sum_k x[i, k] * W[j, k]) / 255 for every item i and weight row j
//              (j = worker * classes + class), a tiled matrix product in workgroup memory.
//              The kernel for hardware GPUs.
//   `logits_regs`: the same L, register-blocked for CPU implementations of the API (lavapipe,
//              llvmpipe): no workgroup memory and no barriers; each invocation keeps 8 items x
//              10 rows of logits in registers and reads the weights at addresses that are the
//              same for every invocation of the workgroup (one scalar load, broadcast). Either
//              kernel computes bit-identical logits.
//   `softmax`: per (item, worker): + bias, argmax (ties to the lowest class), softmax
//              probability of the winner.
//
// Items arrive as u8 pixels packed 4 per u32 (little endian: feature 4w + b is byte b of word w);
// a row of `features` bytes is padded with zeros to `words` u32. Pixel bytes become f32 here.
//
// Summation order: per logit, a fused multiply-add chain from zero over the features in
// ascending order, in blocks of KBLOCK = 256; each block sum s_b is scaled into the total as
// t = s_0 * inv255, then t = fma(inv255, s_b, t). That is exactly what the CPU's portable kernel
// (ndarray -> matrixmultiply sgemm with FMA, k blocks of 256) does; the CPU's AVX2/AVX-512
// kernels sum 8 or 16 strided lanes instead, which moves a logit by an ulp or so. Either way
// labels can only differ where two classes are within rounding of each other (near-ties).

// `ClassifyParams`, TILE_ITEMS, TILE_ROWS, TILE_K, REG_ITEMS, REG_ROWS, REG_GROUP and
// SOFTMAX_GROUP come from the prelude generated from src/backend/gpu/layout.rs.

// Features per block of the sum (the CPU twin's k block).
const KBLOCK: u32 = 256u;
// Words of one TILE_K step.
const TILE_WORDS: u32 = TILE_K / 4u;
// Steps per KBLOCK.
const STEPS_PER_BLOCK: u32 = KBLOCK / TILE_K;
// Features per KBLOCK, in packed words.
const WORDS_PER_BLOCK: u32 = KBLOCK / 4u;

@group(0) @binding(0) var<uniform> params: ClassifyParams;
@group(0) @binding(1) var<storage, read> items: array<u32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> logits_out: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> labels: array<u32>;
@group(0) @binding(6) var<storage, read_write> confidence: array<f32>;
// The weights for `logits_regs`, by chunks of REG_ROWS rows: weight_t[(c * words * 4 + k) * 3 + g]
// holds rows c * REG_ROWS + 4g .. 4g + 3 (g = 2: two rows, then zeros) of feature k. Features
// are padded with zero weights to whole words, rows to whole chunks.
@group(0) @binding(7) var<storage, read> weight_t: array<vec4<f32>>;

// xs[k * 16 + g] holds feature k of items 4g .. 4g + 3 of the tile.
var<workgroup> xs: array<vec4<f32>, 512>;
// ws[k * 4 + h] holds feature k of weight rows 4h .. 4h + 3 of the tile.
var<workgroup> ws: array<vec4<f32>, 128>;

fn byte_f32(word: u32, b: u32) -> f32 {
    return f32((word >> (8u * b)) & 0xffu);
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
    let inv255 = params.inv255;

    // acc: partial sums of the current KBLOCK; total: the scaled logits so far.
    // accA[b] = item 4gx + A, row 4gy + b.
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
        // Items: 16 item groups x 8 words = 128 tasks, 2 per invocation. Each reads one word of
        // four consecutive items and writes four features of the group.
        for (var t = 0u; t < 2u; t++) {
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
            for (var b = 0u; b < 4u; b++) {
                xs[(4u * w + b) * 16u + g] = vec4<f32>(
                    byte_f32(p.x, b),
                    byte_f32(p.y, b),
                    byte_f32(p.z, b),
                    byte_f32(p.w, b),
                );
            }
        }
        // Weights: 32 features x 4 row groups = 128 tasks, 2 per invocation; consecutive
        // invocations read consecutive features of a row.
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
            let scale = vec4<f32>(inv255);
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

// One feature (byte b of the current word of each item) into the 8 x 10 block; the weights of
// the feature start at weight_t[at]. `b` is a constant at every call, so the shifts are too.
fn reg_feature(at: u32, b: u32, lo: vec4<u32>, hi: vec4<u32>, acc: RegBlock) -> RegBlock {
    let w2 = weight_t[at + 2u];
    let w = Rows(weight_t[at], weight_t[at + 1u], w2.xy);
    let xl = vec4<f32>((lo >> vec4<u32>(8u * b)) & vec4<u32>(0xffu));
    let xh = vec4<f32>((hi >> vec4<u32>(8u * b)) & vec4<u32>(0xffu));
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

// The KBLOCK fold of `logits`: total = block * inv255 for the first block, then
// total = fma(inv255, block, total).
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
    let s = params.inv255;
    let chunk = wid.y;
    let i0 = gid.x * REG_ITEMS;
    // Items past the end read the last item (in bounds) and are not written.
    let last = vec4<u32>(params.n_items - 1u);
    let base_lo = min(vec4<u32>(i0) + vec4<u32>(0u, 1u, 2u, 3u), last) * words;
    let base_hi = min(vec4<u32>(i0) + vec4<u32>(4u, 5u, 6u, 7u), last) * words;
    // 3 vec4 per feature, 4 features per word.
    let wbase = chunk * words * 12u;
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
        let at = wbase + 12u * w;
        acc = reg_feature(at, 0u, lo, hi, acc);
        acc = reg_feature(at + 3u, 1u, lo, hi, acc);
        acc = reg_feature(at + 6u, 2u, lo, hi, acc);
        acc = reg_feature(at + 9u, 3u, lo, hi, acc);
        if ((w + 1u) % WORDS_PER_BLOCK == 0u || w + 1u == words) {
            tot = fold_block(first, acc, tot, s);
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

// One invocation per (item, worker), item-major like the output. The dispatch may be 2-D when
// there are more than 65535 workgroups: index = x + y * (groups_x * SOFTMAX_GROUP).
@compute @workgroup_size(SOFTMAX_GROUP, 1, 1)
fn softmax(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let idx = gid.x + gid.y * groups.x * SOFTMAX_GROUP;
    let workers = params.workers;
    if (idx >= params.n_items * workers) {
        return;
    }
    let item = idx / workers;
    let r = idx % workers;
    let classes = params.classes;
    let base = item * params.rows + r * classes;
    let bbase = r * classes;

    // Same order as the CPU's softmax_argmax: z = logit + bias, strict > keeps the lowest class.
    var best = 0u;
    var top = logits_out[base] + bias[bbase];
    for (var c = 1u; c < classes; c++) {
        let z = logits_out[base + c] + bias[bbase + c];
        if (z > top) {
            top = z;
            best = c;
        }
    }
    var sum = 0.0;
    for (var c = 0u; c < classes; c++) {
        let z = logits_out[base + c] + bias[bbase + c];
        sum += exp(z - top);
    }
    labels[idx] = best;
    confidence[idx] = 1.0 / sum;
}
