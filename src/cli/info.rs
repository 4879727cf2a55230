//! `microtask info`: the adapters wgpu finds, their limits, and what each backend would use.

use microtask::backend::gpu::classify::{batch_limit, default_batch, ModelShape};
use microtask::backend::gpu::{adapter_reports, choose, AdapterChoice, AdapterReport};
use microtask::model::Ensemble;
use serde_json::json;

/// List every GPU adapter (name, backend, device type, driver, key limits), the one
/// `--backend auto` and `--backend gpu` would choose, and whether the CPU (rayon) fallback would
/// be used. Honours WGPU_BACKEND, WGPU_ADAPTER_NAME and WGPU_POWER_PREF.
#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The limits that matter to the kernels, in the order they are printed.
fn key_limits(l: &wgpu::Limits) -> [(&'static str, u64); 7] {
    [
        (
            "max_storage_buffer_binding_size",
            l.max_storage_buffer_binding_size,
        ),
        ("max_buffer_size", l.max_buffer_size),
        (
            "max_storage_buffers_per_shader_stage",
            l.max_storage_buffers_per_shader_stage as u64,
        ),
        (
            "max_compute_workgroup_storage_size",
            l.max_compute_workgroup_storage_size as u64,
        ),
        (
            "max_compute_invocations_per_workgroup",
            l.max_compute_invocations_per_workgroup as u64,
        ),
        (
            "max_compute_workgroups_per_dimension",
            l.max_compute_workgroups_per_dimension as u64,
        ),
        (
            "max_compute_workgroup_size_x",
            l.max_compute_workgroup_size_x as u64,
        ),
    ]
}

/// The shape of the default job (5 workers, 10 classes, 28x28), to show a concrete batch limit.
fn reference_shape() -> microtask::Result<ModelShape> {
    ModelShape::of(&Ensemble::zeros(5, 10, 28, 28))
}

fn env_settings() -> Vec<(String, String)> {
    ["WGPU_BACKEND", "WGPU_ADAPTER_NAME", "WGPU_POWER_PREF"]
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect()
}

pub fn run(args: InfoArgs) -> anyhow::Result<()> {
    let adapters = adapter_reports();
    let auto = choose(&adapters, AdapterChoice::Hardware);
    let gpu = choose(&adapters, AdapterChoice::Any);
    let threads = rayon::current_num_threads();
    let shape = reference_shape()?;
    if args.json {
        let list: Vec<_> = adapters.iter().map(|a| adapter_json(a, &shape)).collect();
        let pick = |c: &microtask::Result<(usize, String)>| match c {
            Ok((i, why)) => json!({"adapter": adapters[*i].info.name, "index": i, "why": why}),
            Err(e) => json!({"adapter": null, "why": message(e)}),
        };
        let out = json!({
            "adapters": list,
            "env": env_settings().into_iter().collect::<std::collections::BTreeMap<_, _>>(),
            "auto": pick(&auto),
            "gpu": pick(&gpu),
            "rayon_fallback": auto.is_err(),
            "rayon_threads": threads,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }

    let env = env_settings();
    if !env.is_empty() {
        let list: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("environment: {}", list.join(" "));
    }
    if adapters.is_empty() {
        println!("adapters: none found (no Vulkan, Metal, DX12 or GL driver that wgpu can use)");
    } else {
        println!("adapters: {}", adapters.len());
    }
    for (i, a) in adapters.iter().enumerate() {
        print_adapter(i, a, &shape);
    }
    println!();
    match &auto {
        Ok((i, why)) => println!("--backend auto:   {} [{i}] ({why})", adapters[*i].short()),
        Err(e) => println!(
            "--backend auto:   cpu, rayon with {threads} threads ({})",
            message(e)
        ),
    }
    match &gpu {
        Ok((i, why)) => println!("--backend gpu:    {} [{i}] ({why})", adapters[*i].short()),
        Err(e) => println!("--backend gpu:    fails: {}", message(e)),
    }
    println!(
        "--backend hybrid: {}",
        match &gpu {
            Ok((i, _)) => format!("{} + cpu (rayon, {threads} threads)", adapters[*i].short()),
            Err(_) => "fails: needs a GPU adapter, like --backend gpu".into(),
        }
    );
    println!(
        "rayon fallback:   {}",
        if auto.is_err() {
            format!("yes: auto runs on the CPU ({threads} threads)")
        } else {
            "no: auto runs on the GPU (the CPU takes over only after a device error)".into()
        }
    );
    Ok(())
}

/// The error's text without the `gpu: ` prefix of `Error::Gpu`.
fn message(e: &microtask::Error) -> String {
    match e {
        microtask::Error::Gpu(m) => m.clone(),
        other => other.to_string(),
    }
}

fn print_adapter(i: usize, a: &AdapterReport, shape: &ModelShape) {
    println!("[{i}] {}", a.info.name);
    println!(
        "    backend {}, device type {:?}{}, driver {}",
        a.info.backend,
        a.info.device_type,
        if a.software { " (software)" } else { "" },
        a.driver()
    );
    if !a.compute {
        println!("    compute shaders: not supported (cannot run the kernels)");
        return;
    }
    for (name, value) in key_limits(&a.limits) {
        println!("    {name:<40} {value}");
    }
    let limit = batch_limit(&a.limits, shape);
    println!(
        "    batch for 5 workers x 10 classes x 28x28: default {}, at most {} ({})",
        default_batch(&limit),
        limit.items,
        limit.limit
    );
}

fn adapter_json(a: &AdapterReport, shape: &ModelShape) -> serde_json::Value {
    let limits: serde_json::Map<String, serde_json::Value> = key_limits(&a.limits)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into()))
        .collect();
    let limit = batch_limit(&a.limits, shape);
    json!({
        "name": a.info.name,
        "backend": a.info.backend.to_string(),
        "device_type": format!("{:?}", a.info.device_type),
        "driver": a.driver(),
        "software": a.software,
        "compute": a.compute,
        "limits": limits,
        "batch_5x10x784": {"default": default_batch(&limit), "max": limit.items, "limit": limit.limit},
    })
}
