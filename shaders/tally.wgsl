// Majority vote over sparse answers (task, worker, label, confidence).
// GPU twin of src/backend/cpu/tally.rs; driven by src/backend/gpu/tally.rs.
//
// Two entry points, run one after the other in the same compute pass:
//   `accumulate`: one invocation per vote; atomically adds 1 to counts[task, label] and the
//                 fixed-point confidence round(clamp(conf, 0, 1) * 65536) to sums[task, label]
//                 (saturating at u32::MAX, like the CPU's saturating_add).
//   `pick`:       one invocation per task; most votes wins, then the higher confidence sum,
//                 then the lowest label; confidence = count / total as an f32 division.
// `counts` and `sums` must be zero before `accumulate` (the host clears them).

// `TallyParams`, `Vote` (Rust's `GpuVote`), `TaskOut` (Rust's `GpuTaskLabel`), TALLY_GROUP and
// CONF_FIXED_SCALE come from the prelude generated from src/backend/gpu/layout.rs.

@group(0) @binding(0) var<uniform> params: TallyParams;
@group(0) @binding(1) var<storage, read> votes: array<Vote>;
@group(0) @binding(2) var<storage, read_write> counts: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read_write> sums: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read_write> out: array<TaskOut>;

// The CPU's `conf_fixed`: (conf.clamp(0, 1) * SCALE).round() as u32, with NaN -> 0 and round
// half away from zero (WGSL's round() is half to even, so it is not used). x - floor(x) is exact
// for 0 <= x <= 65536, so the comparison with 0.5 is exact too.
fn conf_fixed(bits: u32) -> u32 {
    if ((bits & 0x7fffffffu) > 0x7f800000u) {
        return 0u;
    }
    let x = clamp(bitcast<f32>(bits), 0.0, 1.0) * CONF_FIXED_SCALE;
    let f = floor(x);
    var r = u32(f);
    if (x - f >= 0.5) {
        r += 1u;
    }
    return r;
}

fn linear_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * TALLY_GROUP;
}

@compute @workgroup_size(TALLY_GROUP, 1, 1)
fn accumulate(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let idx = linear_index(gid, groups);
    if (idx >= params.n_votes) {
        return;
    }
    let v = votes[idx];
    if (v.task >= params.n_tasks || v.label >= params.classes) {
        return;
    }
    let cell = v.task * params.classes + v.label;
    atomicAdd(&counts[cell], 1u);
    let add = conf_fixed(v.conf_bits);
    if (add == 0u) {
        return;
    }
    // Saturating add: most cells never come near u32::MAX, so the first try usually lands.
    var old = atomicLoad(&sums[cell]);
    loop {
        let room = 0xffffffffu - old;
        let new_value = old + min(add, room);
        let r = atomicCompareExchangeWeak(&sums[cell], old, new_value);
        if (r.exchanged) {
            break;
        }
        old = r.old_value;
    }
}

@compute @workgroup_size(TALLY_GROUP, 1, 1)
fn pick(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let task = linear_index(gid, groups);
    if (task >= params.n_tasks) {
        return;
    }
    let classes = params.classes;
    let base = task * classes;
    var best = 0u;
    var best_count = atomicLoad(&counts[base]);
    var best_sum = atomicLoad(&sums[base]);
    var total = best_count;
    for (var c = 1u; c < classes; c++) {
        let count = atomicLoad(&counts[base + c]);
        let sum = atomicLoad(&sums[base + c]);
        total += count;
        if (count > best_count || (count == best_count && sum > best_sum)) {
            best = c;
            best_count = count;
            best_sum = sum;
        }
    }
    var conf = 0.0;
    if (total > 0u) {
        conf = f32(best_count) / f32(total);
    }
    out[task] = TaskOut(best, conf, total);
}
