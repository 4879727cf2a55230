// Dawid-Skene EM steps: the E-step (task posteriors) and the M-step's sums (per-worker confusion
// counts, class totals, log-likelihood). GPU twins of src/backend/cpu/dawid_skene.rs; driven by
// src/backend/gpu/dawid_skene.rs. Same layout as the CPU twins (C classes, W workers, T tasks):
//   model[k]                       = ln P(class k)                          (k < C)
//   model[C + (w * C + l) * C + k] = ln P(worker w answers l | class k)     ("answer-major")
//   post[t * C + k]                = P(task t is of class k | answers);  post[ll_offset + t] =
//                                    task t's log-likelihood term
//   counts[(w * C + l) * C + k]    = sum of post[t * C + k] over worker w's answers l
//   Answers are grouped by task for the E-step (rows w * C + l of the log-confusion) and by row
//   w * C + l for the M-step (tasks in task order within a row).
//
// Three entry points, run one after the other in one compute pass:
//   `e_step`: one invocation per task: log-prior plus the log-confusion rows of its answers,
//             max-subtract, exp, normalise; a gold task is clamped (one-hot, its term is its
//             class's score). The summation order of the softmax follows the CPU twin's, and
//             exp/ln are the CPU twin's polynomials (`exp_approx`, `ln_approx`).
//   `m_step`: one invocation per count (row w * C + l, class k): the sum, in a register, of
//             post[t * C + k] over the tasks t of that row's answers in task order: the order
//             in which the CPU twin's by-worker `m_step` adds into that count.
//   `totals`: one invocation per (block of TOTALS_BLOCK tasks, class k): the block's sum of
//             post[t * C + k] in f32; the host adds the blocks in f64 (class totals). The host
//             reads the log-likelihood terms back and adds them in f64, as the CPU twin does.

// `DsParams`, DS_GROUP, TOTALS_BLOCK and NO_CLAMP come from the prelude generated from
// src/backend/gpu/layout.rs.

@group(0) @binding(0) var<uniform> params: DsParams;
// [task_start (tasks + 1) | clamp (tasks)]: task t's answers are task_row[start[t]..start[t+1]].
@group(0) @binding(1) var<storage, read> task_info: array<u32>;
// Per answer, grouped by task: worker * C + label (a row of the log-confusion).
@group(0) @binding(2) var<storage, read> task_row: array<u32>;
// [log_prior (C) | log_conf (W * C * C)].
@group(0) @binding(3) var<storage, read> model: array<f32>;
// [posteriors (T * C) | log-likelihood terms (T)].
@group(0) @binding(4) var<storage, read_write> post: array<f32>;
// [row_start (W * C + 1) | entries]: the answers label l of worker w are entries
// row_start[w * C + l]..row_start[w * C + l + 1], each task * C (its posterior row's offset).
@group(0) @binding(5) var<storage, read> row_info: array<u32>;
@group(0) @binding(6) var<storage, read_write> counts: array<f32>;
// blocks * C: per block of tasks, the sums of the posteriors per class.
@group(0) @binding(7) var<storage, read_write> partials: array<f32>;

fn linear_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * DS_GROUP;
}

// The CPU twin's `exp_approx`: e^x with relative error below 3e-7 for x in [-87, 88]; 0 below
// -87. Cody-Waite reduction x = n ln2 + r, e^r by its Taylor polynomial to degree 6. round() is
// round-half-to-even, as the CPU's magic-number rounding.
fn exp_approx(x: f32) -> f32 {
    if (x < -87.0) {
        return 0.0;
    }
    let n = round(x * 1.442695);
    let r = (x - n * 0.6933594) - n * -2.1219444e-4;
    let p = 1.0 + r * (1.0 + r * (0.5 + r * (0.16666667 + r * (0.041666668
        + r * (0.008333334 + r * 0.0013888889)))));
    let scale = bitcast<f32>(u32(i32(n) + 127) << 23u);
    return p * scale;
}

// The CPU twin's `ln_approx`: ln(z) for normal z > 0, relative error below 1e-7.
// z = 2^e * m with m in [sqrt(1/2), sqrt(2)); ln m by the atanh series in s = (m - 1) / (m + 1).
fn ln_approx(z: f32) -> f32 {
    let bits = bitcast<i32>(z);
    let off = bits - 0x3f3504f3; // bits of sqrt(1/2)
    let e = off >> 23u;
    let m = bitcast<f32>(bits - (e << 23u));
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let lnm = 2.0 * s * (1.0 + s2 * (0.33333334 + s2 * (0.2 + s2 * (0.14285715
        + s2 * 0.11111111))));
    return f32(e) * 0.6931472 + lnm;
}

@compute @workgroup_size(DS_GROUP, 1, 1)
fn e_step(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let t = linear_index(gid, groups);
    if (t >= params.tasks) {
        return;
    }
    let c = params.classes;
    let base = t * c;
    // Scores: log-prior plus one log-confusion row per answer, in the task's answer order.
    for (var k = 0u; k < c; k++) {
        post[base + k] = model[k];
    }
    let first = task_info[t];
    let last = task_info[t + 1u];
    for (var i = first; i < last; i++) {
        let row = c + task_row[i] * c;
        for (var k = 0u; k < c; k++) {
            post[base + k] += model[row + k];
        }
    }
    let gold = task_info[params.clamp_offset + t];
    if (gold != NO_CLAMP) {
        let score = post[base + gold];
        for (var k = 0u; k < c; k++) {
            post[base + k] = select(0.0, 1.0, k == gold);
        }
        post[params.ll_offset + t] = score;
        return;
    }
    var m = -3.4028235e38; // f32::MIN, as the CPU twin starts its max
    for (var k = 0u; k < c; k++) {
        let v = post[base + k];
        if (v > m) {
            m = v;
        }
    }
    // The sum of the exponentials in the CPU twin's order: 2 to 16 classes in four lanes
    // (class k into lane k % 4, then (l0 + l1) + (l2 + l3)), other counts in sequence.
    var z = 0.0;
    if (c >= 2u && c <= 16u) {
        var lane = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
        for (var k = 0u; k < c; k++) {
            let e = exp_approx(post[base + k] - m);
            post[base + k] = e;
            lane[k & 3u] += e;
        }
        z = (lane[0] + lane[1]) + (lane[2] + lane[3]);
    } else {
        for (var k = 0u; k < c; k++) {
            let e = exp_approx(post[base + k] - m);
            post[base + k] = e;
            z += e;
        }
    }
    let inv = 1.0 / z;
    for (var k = 0u; k < c; k++) {
        post[base + k] *= inv;
    }
    post[params.ll_offset + t] = m + ln_approx(z);
}

@compute @workgroup_size(DS_GROUP, 1, 1)
fn m_step(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let idx = linear_index(gid, groups);
    let c = params.classes;
    if (idx >= params.workers * c * c) {
        return;
    }
    // idx = row * C + k with row = w * C + l: counts[idx] is P(answer l | class k)'s count.
    let row = idx / c;
    let k = idx - row * c;
    var sum = 0.0;
    let last = row_info[row + 1u];
    for (var i = row_info[row]; i < last; i++) {
        sum += post[row_info[params.entry_offset + i] + k];
    }
    counts[idx] = sum;
}

@compute @workgroup_size(DS_GROUP, 1, 1)
fn totals(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let idx = linear_index(gid, groups);
    let c = params.classes;
    if (idx >= params.blocks * c) {
        return;
    }
    let b = idx / c;
    let k = idx - b * c;
    let t0 = b * TOTALS_BLOCK;
    let t1 = min(t0 + TOTALS_BLOCK, params.tasks);
    var sum = 0.0;
    for (var t = t0; t < t1; t++) {
        sum += post[t * c + k];
    }
    partials[idx] = sum;
}
