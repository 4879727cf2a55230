//! Per-stage timings of one classification run, for `microtask bench` and the run report.

use std::time::Duration;

/// What one `classify` call spent where. Stage times are summed over batches; `pack` runs on
/// its own thread and `cpu` on the rayon pool, so stages overlap and may add up to more than
/// `wall`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunStats {
    /// The logits kernel that ran (`tiled` or `registers`).
    pub kernel: &'static str,
    /// Items classified.
    pub items: usize,
    /// Batches the items were split into.
    pub batches: usize,
    /// Items per batch (the last batch may be shorter).
    pub batch_size: usize,
    /// Slots in the ring (batches in flight at once).
    pub slots: usize,
    /// Items the device classified.
    pub gpu_items: usize,
    /// Items the CPU classified (hybrid share, or the rest after a device error).
    pub cpu_items: usize,
    /// Packing u8 rows into u32 words (zero when rows are whole words: they go as they are).
    pub pack: Duration,
    /// Queueing the uploads (`write_buffer`: the copy into staging memory).
    pub upload: Duration,
    /// Recording and submitting the kernels and the readback copy. Some drivers run the work
    /// inside the submit call (GL, and lavapipe when the previous batch is still running), so
    /// on those this includes device time.
    pub dispatch: Duration,
    /// Blocked waiting for the device to finish a batch whose slot was needed.
    pub wait: Duration,
    /// Copying results out of mapped readback buffers into the output.
    pub readback: Duration,
    /// Classifying on the CPU (hybrid share or fallback).
    pub cpu: Duration,
    /// Time the device had work queued, from each submit (or the previous batch's completion)
    /// to the batch's completion as observed by the poller: an upper bound on device time.
    pub device_busy: Duration,
    /// Wall time of the whole call.
    pub wall: Duration,
    /// Why batches went to the CPU after a device error, if they did.
    pub fallback: Option<String>,
}

impl RunStats {
    /// Fraction of the wall time the device was busy: near 1 when uploads, readbacks and
    /// packing hide behind the kernels.
    pub fn device_busy_fraction(&self) -> f64 {
        ratio(self.device_busy, self.wall)
    }

    /// Fraction of the host-side stage time (pack, upload, dispatch, readback) that ran while
    /// the device was busy with other batches rather than in series with it: 1 means every
    /// stage was hidden behind the kernels, 0 means none was.
    pub fn overlap(&self) -> f64 {
        let host = self.pack + self.upload + self.dispatch + self.readback;
        if host.is_zero() {
            return 1.0;
        }
        // Wall time not covered by the device or by waiting for it is host work done in series.
        let serial = self.wall.saturating_sub(self.device_busy);
        (1.0 - ratio(serial, host)).clamp(0.0, 1.0)
    }

    pub fn items_per_s(&self) -> f64 {
        let s = self.wall.as_secs_f64();
        if s > 0.0 {
            self.items as f64 / s
        } else {
            0.0
        }
    }

    /// Stage name and seconds, in pipeline order, for tables and JSON.
    pub fn stages(&self) -> [(&'static str, f64); 8] {
        [
            ("pack", self.pack.as_secs_f64()),
            ("upload", self.upload.as_secs_f64()),
            ("dispatch", self.dispatch.as_secs_f64()),
            ("wait", self.wait.as_secs_f64()),
            ("readback", self.readback.as_secs_f64()),
            ("cpu", self.cpu.as_secs_f64()),
            ("device_busy", self.device_busy.as_secs_f64()),
            ("wall", self.wall.as_secs_f64()),
        ]
    }

    /// The stats as a JSON object (seconds as floats).
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("items".into(), self.items.into());
        m.insert("kernel".into(), self.kernel.into());
        m.insert("batches".into(), self.batches.into());
        m.insert("batch_size".into(), self.batch_size.into());
        m.insert("slots".into(), self.slots.into());
        m.insert("gpu_items".into(), self.gpu_items.into());
        m.insert("cpu_items".into(), self.cpu_items.into());
        for (name, secs) in self.stages() {
            m.insert(format!("{name}_s"), secs.into());
        }
        m.insert("items_per_s".into(), self.items_per_s().into());
        m.insert(
            "device_busy_fraction".into(),
            self.device_busy_fraction().into(),
        );
        m.insert("overlap".into(), self.overlap().into());
        if let Some(f) = &self.fallback {
            m.insert("fallback".into(), f.clone().into());
        }
        serde_json::Value::Object(m)
    }
}

fn ratio(a: Duration, b: Duration) -> f64 {
    let b = b.as_secs_f64();
    if b > 0.0 {
        a.as_secs_f64() / b
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_stay_in_range() {
        let s = RunStats {
            items: 100,
            pack: Duration::from_millis(10),
            upload: Duration::from_millis(10),
            device_busy: Duration::from_millis(90),
            wall: Duration::from_millis(100),
            ..Default::default()
        };
        assert!((s.device_busy_fraction() - 0.9).abs() < 1e-9);
        assert!((s.overlap() - 0.5).abs() < 1e-9);
        assert_eq!(s.to_json()["items"], 100);
        assert_eq!(RunStats::default().overlap(), 1.0);
    }
}
