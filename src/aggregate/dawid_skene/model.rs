//! Dawid-Skene's parameters and the estimate that makes them from the M-step's sums.

use rayon::prelude::*;

/// Fitted parameters, in the kernels' layout.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DsModel {
    pub classes: usize,
    pub workers: usize,
    /// ln P(class c).
    pub log_prior: Vec<f32>,
    /// `[(w * classes + answer) * classes + truth]` = ln P(worker w answers `answer` | `truth`).
    pub log_conf: Vec<f32>,
}

impl DsModel {
    /// P(class `c`).
    pub fn prior(&self, c: usize) -> f32 {
        self.log_prior[c].exp()
    }

    /// P(worker `w` answers `answer` | the true class is `truth`).
    pub fn confusion(&self, w: usize, truth: usize, answer: usize) -> f32 {
        let c = self.classes;
        self.log_conf[(w * c + answer) * c + truth].exp()
    }

    /// The worker's probability of answering correctly on a task drawn from the class priors:
    /// `sum over c of P(c) * P(answer c | c)`.
    pub fn worker_accuracy(&self, w: usize) -> f32 {
        (0..self.classes)
            .map(|c| self.prior(c) * self.confusion(w, c, c))
            .sum()
    }

    /// One task's log-posterior scores before the softmax, `log_prior + the log_conf rows of
    /// its answers` (`rows`: `worker * classes + label`), into `out[..classes]`. Added in the
    /// E-step kernels' order, so its argmax is theirs.
    pub fn scores(&self, rows: &[u32], out: &mut [f32]) {
        let c = self.classes;
        let s = &mut out[..c];
        s.copy_from_slice(&self.log_prior[..c]);
        for &r in rows {
            let base = r as usize * c;
            for (v, l) in s.iter_mut().zip(&self.log_conf[base..base + c]) {
                *v += l;
            }
        }
    }
}

/// Estimate: smoothed log-probabilities from counts. `log_conf[(w*C + l)*C + c] =
/// ln((counts + a) / (sum over l of counts + C a))` and `log_prior[c] = ln((totals[c] + a) /
/// (sum of totals + C a))`, with `a = smoothing` (> 0 keeps every entry finite).
pub fn estimate(
    classes: usize,
    counts: &[f32],
    totals: &[f64],
    smoothing: f32,
    log_prior: &mut [f32],
    log_conf: &mut [f32],
) {
    let c = classes;
    let a = smoothing as f64;
    let sum: f64 = totals.iter().sum();
    for k in 0..c {
        log_prior[k] = ((totals[k] + a) / (sum + c as f64 * a)).ln() as f32;
    }
    log_conf
        .par_chunks_mut(c * c)
        .zip(counts.par_chunks(c * c))
        .for_each(|(lc, cnt)| {
            let mut col = [0f64; 64];
            let mut colv = vec![];
            let col: &mut [f64] = if c <= 64 {
                &mut col[..c]
            } else {
                colv.resize(c, 0.0);
                &mut colv
            };
            col.fill(0.0);
            for l in 0..c {
                for k in 0..c {
                    col[k] += cnt[l * c + k] as f64;
                }
            }
            for l in 0..c {
                for k in 0..c {
                    let v = (cnt[l * c + k] as f64 + a) / (col[k] + c as f64 * a);
                    lc[l * c + k] = v.ln() as f32;
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_is_finite_with_empty_counts() {
        let c = 3;
        let counts = vec![0f32; 2 * c * c];
        let (mut lp, mut lc) = (vec![0f32; c], vec![0f32; 2 * c * c]);
        estimate(c, &counts, &[0.0; 3], 0.01, &mut lp, &mut lc);
        assert!(lp.iter().chain(&lc).all(|v| v.is_finite()));
        assert!((lc[0].exp() - 1.0 / 3.0).abs() < 1e-6);
    }
}
