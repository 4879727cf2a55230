//! The wgpu instance, the adapter choice and the device.
//!
//! The instance comes from the environment (`WGPU_BACKEND`, `WGPU_POWER_PREF` and the other
//! `wgpu` variables), `WGPU_ADAPTER_NAME` picks an adapter by name, and the device gets the
//! limits the adapter offers (storage buffer size matters: it bounds the batch size).

use super::layout::Shader;
use crate::error::{Error, Result};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Which adapters a backend may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdapterChoice {
    /// Only hardware GPUs (discrete, integrated, virtual), unless `WGPU_ADAPTER_NAME` names a
    /// software adapter explicitly: what `--backend auto` uses.
    Hardware,
    /// Any adapter that runs compute shaders, including a software one (lavapipe/llvmpipe):
    /// what `--backend gpu` uses.
    Any,
}

/// What `microtask info` and the reports show about one adapter.
#[derive(Debug, Clone)]
pub struct AdapterReport {
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    /// Runs compute shaders (false on some GL drivers).
    pub compute: bool,
    /// A CPU implementation (lavapipe, llvmpipe, SwiftShader, WARP).
    pub software: bool,
}

impl AdapterReport {
    fn new(adapter: &wgpu::Adapter) -> Self {
        let info = adapter.get_info();
        let compute = adapter
            .get_downlevel_capabilities()
            .flags
            .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
            && info.backend != wgpu::Backend::Noop;
        let software = is_software(&info);
        AdapterReport {
            limits: adapter.limits(),
            info,
            compute,
            software,
        }
    }

    /// `llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan, Cpu, software)`.
    pub fn short(&self) -> String {
        format!(
            "{} ({}, {:?}{})",
            self.info.name,
            self.info.backend,
            self.info.device_type,
            if self.software { ", software" } else { "" }
        )
    }

    /// Driver name and version, as the adapter reports them.
    pub fn driver(&self) -> String {
        match (
            self.info.driver.is_empty(),
            self.info.driver_info.is_empty(),
        ) {
            (true, true) => "unknown".into(),
            (false, true) => self.info.driver.clone(),
            (true, false) => self.info.driver_info.clone(),
            (false, false) => format!("{} {}", self.info.driver, self.info.driver_info),
        }
    }
}

impl fmt::Display for AdapterReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.short())
    }
}

fn is_software(info: &wgpu::AdapterInfo) -> bool {
    if info.device_type == wgpu::DeviceType::Cpu {
        return true;
    }
    let name = info.name.to_lowercase();
    [
        "llvmpipe",
        "lavapipe",
        "softpipe",
        "swiftshader",
        "basic render",
    ]
    .iter()
    .any(|s| name.contains(s))
}

/// A wgpu instance configured from the environment (`WGPU_BACKEND` and friends).
pub fn instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
}

/// Every adapter the instance finds, in the order wgpu lists them.
pub fn enumerate(instance: &wgpu::Instance) -> Vec<(wgpu::Adapter, AdapterReport)> {
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
        .into_iter()
        .map(|a| {
            let r = AdapterReport::new(&a);
            (a, r)
        })
        .collect()
}

/// Every adapter found, for `microtask info`.
pub fn adapter_reports() -> Vec<AdapterReport> {
    enumerate(&instance()).into_iter().map(|(_, r)| r).collect()
}

/// Preference rank of an adapter: lower is better.
fn rank(r: &AdapterReport, power: Option<wgpu::PowerPreference>) -> (u8, u8) {
    use wgpu::DeviceType as T;
    let kind = if r.software {
        9
    } else {
        match (r.info.device_type, power) {
            (T::IntegratedGpu, Some(wgpu::PowerPreference::LowPower)) => 0,
            (T::DiscreteGpu, _) => 1,
            (T::IntegratedGpu, _) => 2,
            (T::VirtualGpu, _) => 3,
            _ => 4,
        }
    };
    let backend = match r.info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        wgpu::Backend::Gl => 1,
        _ => 2,
    };
    (kind, backend)
}

/// Picks an adapter from `reports` for `choice`: returns its index and why it was chosen, or
/// why none fits (the message lists what was found).
pub fn choose(reports: &[AdapterReport], choice: AdapterChoice) -> Result<(usize, String)> {
    let wanted_name = std::env::var("WGPU_ADAPTER_NAME")
        .ok()
        .filter(|s| !s.is_empty());
    let found = || {
        if reports.is_empty() {
            "no adapters found (no Vulkan/Metal/DX12/GL driver?)".to_string()
        } else {
            let names: Vec<String> = reports.iter().map(|r| r.short()).collect();
            format!("found: {}", names.join("; "))
        }
    };
    if let Some(name) = &wanted_name {
        let lower = name.to_lowercase();
        let hit = reports
            .iter()
            .position(|r| r.compute && r.info.name.to_lowercase().contains(&lower));
        return match hit {
            Some(i) => Ok((i, format!("WGPU_ADAPTER_NAME={name} selects it"))),
            None => Err(Error::Gpu(format!(
                "WGPU_ADAPTER_NAME={name} matches no adapter that runs compute shaders; {}",
                found()
            ))),
        };
    }
    let power = wgpu::PowerPreference::from_env();
    let best = reports
        .iter()
        .enumerate()
        .filter(|(_, r)| r.compute && (choice == AdapterChoice::Any || !r.software))
        .min_by_key(|(_, r)| rank(r, power))
        .map(|(i, _)| i);
    match (best, choice) {
        (Some(i), AdapterChoice::Hardware) => Ok((
            i,
            format!("the best hardware GPU of {} adapters", reports.len()),
        )),
        (Some(i), AdapterChoice::Any) => {
            let r = &reports[i];
            let why = if r.software {
                "no hardware GPU; the software adapter runs the same kernels (slowly)"
            } else {
                "the best GPU found"
            };
            Ok((i, why.to_string()))
        }
        (None, AdapterChoice::Hardware) => Err(Error::Gpu(format!(
            "no hardware GPU adapter; {}{}",
            found(),
            if reports.iter().any(|r| r.compute) {
                " (--backend gpu would use the software adapter)"
            } else {
                ""
            }
        ))),
        (None, AdapterChoice::Any) => Err(Error::Gpu(format!(
            "no GPU adapter that runs compute shaders; {}. Install a Vulkan driver (e.g. \
             `apt-get install mesa-vulkan-drivers` for the software one) or use --backend cpu",
            found()
        ))),
    }
}

/// What went wrong on the device, recorded from wgpu's callbacks (which fire on any thread).
#[derive(Debug, Default)]
pub struct DeviceHealth {
    errors: AtomicU64,
    lost: AtomicBool,
    first: Mutex<Option<String>>,
}

impl DeviceHealth {
    fn record(&self, message: String) {
        if let Ok(mut first) = self.first.lock() {
            if first.is_none() {
                *first = Some(message);
            }
        }
        self.errors.fetch_add(1, Ordering::SeqCst);
    }

    /// Errors seen so far; a batch is trusted only if this did not move while it ran.
    pub fn error_count(&self) -> u64 {
        self.errors.load(Ordering::SeqCst)
    }

    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// The first error recorded, for messages.
    pub fn first_error(&self) -> String {
        self.first
            .lock()
            .ok()
            .and_then(|f| f.clone())
            .unwrap_or_else(|| "unknown device error".into())
    }
}

/// An open device with its queue and the adapter it came from.
pub struct GpuContext {
    pub adapter: AdapterReport,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    /// Limits the device was opened with.
    pub limits: wgpu::Limits,
    /// Why this adapter was chosen.
    pub reason: String,
    pub health: Arc<DeviceHealth>,
    /// Storage buffers the host can map and write (`MAPPABLE_PRIMARY_BUFFERS`), requested on
    /// software adapters only: there "device memory" is host memory, and writing a batch
    /// straight into its storage buffer saves a staging copy and a copy on the device timeline.
    /// On a discrete GPU such buffers would live in slow host-visible memory.
    pub direct_upload: bool,
}

impl fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.adapter.short())
            .field("reason", &self.reason)
            .finish()
    }
}

impl GpuContext {
    /// Compiles `shader` behind its generated prelude ([`Shader::source`]) and one compute
    /// pipeline per entry point; a shader the device refuses is an `Error::Gpu` naming it.
    pub fn compile<const N: usize>(
        &self,
        shader: &Shader,
        entries: [&str; N],
    ) -> Result<[wgpu::ComputePipeline; N]> {
        let name = shader.file;
        let errors = self.health.error_count();
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(name),
                source: wgpu::ShaderSource::Wgsl(shader.source().into()),
            });
        let pipelines = entries.map(|entry| {
            self.device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(entry),
                    layout: None,
                    module: &module,
                    entry_point: Some(entry),
                    compilation_options: Default::default(),
                    cache: None,
                })
        });
        if self.health.error_count() != errors {
            return Err(Error::Gpu(format!(
                "{name} does not compile on {}: {}",
                self.adapter.short(),
                self.health.first_error()
            )));
        }
        Ok(pipelines)
    }

    /// Opens the adapter `choice` picks, with the limits it offers.
    pub fn new(choice: AdapterChoice) -> Result<Self> {
        let instance = instance();
        let mut adapters = enumerate(&instance);
        let reports: Vec<AdapterReport> = adapters.iter().map(|(_, r)| r.clone()).collect();
        let (index, reason) = choose(&reports, choice)?;
        let (adapter, report) = adapters.swap_remove(index);
        Self::open(adapter, report, reason)
    }

    fn open(adapter: wgpu::Adapter, report: AdapterReport, reason: String) -> Result<Self> {
        let offered = adapter.limits();
        let direct = wgpu::Features::MAPPABLE_PRIMARY_BUFFERS;
        let features = if report.software && adapter.features().contains(direct) {
            direct
        } else {
            wgpu::Features::empty()
        };
        let request = |limits: wgpu::Limits| {
            pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
                label: Some("microtask"),
                required_features: features,
                required_limits: limits,
                ..Default::default()
            }))
        };
        // Everything the adapter offers; if a driver refuses that, the portable defaults with the
        // buffer and dispatch limits we care about raised to what it offers.
        let (device, queue, limits) = match request(offered.clone()) {
            Ok((d, q)) => (d, q, offered.clone()),
            Err(_) => {
                let mut l = wgpu::Limits::downlevel_defaults();
                l.max_storage_buffer_binding_size = offered.max_storage_buffer_binding_size;
                l.max_buffer_size = offered.max_buffer_size;
                l.max_compute_workgroups_per_dimension =
                    offered.max_compute_workgroups_per_dimension;
                l.max_storage_buffers_per_shader_stage =
                    offered.max_storage_buffers_per_shader_stage;
                let (d, q) = request(l.clone()).map_err(|e| {
                    Error::Gpu(format!("cannot open a device on {}: {e}", report.short()))
                })?;
                (d, q, l)
            }
        };
        let health = Arc::new(DeviceHealth::default());
        let h = health.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| h.record(e.to_string())));
        let h = health.clone();
        device.set_device_lost_callback(move |reason, message| {
            h.lost.store(true, Ordering::SeqCst);
            h.record(if message.is_empty() {
                format!("device lost ({reason:?})")
            } else {
                format!("device lost ({reason:?}): {message}")
            });
        });
        let direct_upload = device.features().contains(direct);
        Ok(GpuContext {
            adapter: report,
            device,
            queue,
            limits,
            reason,
            health,
            direct_upload,
        })
    }

    /// The largest storage buffer binding the device accepts, in bytes.
    pub fn max_binding(&self) -> u64 {
        self.limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
    }
}
