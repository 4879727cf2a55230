// The softmax of a batch's logits: per (item, worker), + bias, argmax (ties to the lowest
// class) and the softmax probability of the winner. Runs after one of classify_logits.wgsl's
// kernels in the same compute pass. GPU twin of the softmax in src/backend/cpu/kernel.rs; driven
// by src/backend/gpu/classify.rs.
//
// `ClassifyParams` and SOFTMAX_GROUP come from the prelude generated from
// src/backend/gpu/layout.rs.

@group(0) @binding(0) var<uniform> params: ClassifyParams;
@group(0) @binding(3) var<storage, read_write> logits_out: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> labels: array<u32>;
@group(0) @binding(6) var<storage, read_write> confidence: array<f32>;

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
