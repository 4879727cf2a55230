// Dense softmax classification of a batch of items by every worker of an ensemble.
// GPU twin of src/backend/cpu/classify.rs; driven by src/backend/gpu/classify.rs.
//
// Two entry points, run one after the other in the same compute pass:
//   `logits`:  L[i, j] = (sum_k x[i, k] * W[j, k]) / 255 for every item i and weight row j
//              (j = worker * classes + class), a tiled matrix product in workgroup memory.
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

// Keep in sync with `ClassifyParams` in src/backend/gpu/layout.rs.
struct ClassifyParams {
    n_items: u32,
    features: u32,
    // u32 words per packed item row: ceil(features / 4).
    words: u32,
    // workers * classes.
    rows: u32,
    classes: u32,
    workers: u32,
    // 1.0 / 255.0 as the CPU computes it (f32 division), passed in so both sides use the same bits.
    inv255: f32,
    _pad: u32,
}

// Keep in sync with TILE_ITEMS, TILE_ROWS, TILE_K and SOFTMAX_GROUP in src/backend/gpu/layout.rs.
const TILE_ITEMS: u32 = 64u;
const TILE_ROWS: u32 = 16u;
const TILE_K: u32 = 32u;
// Words of one TILE_K step.
const TILE_WORDS: u32 = 8u;
// Steps per KBLOCK = 256 features (the CPU twin's k block).
const STEPS_PER_BLOCK: u32 = 8u;
const SOFTMAX_GROUP: u32 = 64u;

@group(0) @binding(0) var<uniform> params: ClassifyParams;
@group(0) @binding(1) var<storage, read> items: array<u32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> logits_out: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> labels: array<u32>;
@group(0) @binding(6) var<storage, read_write> confidence: array<f32>;

// xs[k * 16 + g] holds feature k of items 4g .. 4g + 3 of the tile.
var<workgroup> xs: array<vec4<f32>, 512>;
// ws[k * 4 + h] holds feature k of weight rows 4h .. 4h + 3 of the tile.
var<workgroup> ws: array<vec4<f32>, 128>;

fn byte_f32(word: u32, b: u32) -> f32 {
    return f32((word >> (8u * b)) & 0xffu);
}

// 64 invocations; invocation (gx, gy) computes items 4gx .. 4gx + 3 x rows 4gy .. 4gy + 3 of the
// 64 x 16 output tile.
@compute @workgroup_size(16, 4, 1)
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

// One invocation per (item, worker), item-major like the output. The dispatch may be 2-D when
// there are more than 65535 workgroups: index = x + y * (groups_x * SOFTMAX_GROUP).
@compute @workgroup_size(64, 1, 1)
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
