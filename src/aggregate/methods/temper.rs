//! A model's weight against the annotators: the exponent `lambda` on its class probabilities
//! (`p^lambda`, renormalised; a temperature of `1 / lambda`) under which they best predict the
//! consensus.
//!
//! The fit maximises `sum over tasks of sum_c r[t][c] ln softmax(lambda ln p[t])[c]`, the expected
//! log-likelihood of the posteriors `r` under the tempered model, over the tasks the model covers
//! that have answers: the M-step for `lambda` when the tempered probabilities are each task's
//! prior. It is concave in `lambda`, so a safeguarded Newton search finds its maximum within
//! `[0, MAX_WEIGHT]`. No tasks to learn from: weight 1 (the probabilities at face value).

use super::bayes::ModelEvidence;

/// The largest weight (a model sharper than its own probabilities by this factor at most).
pub const MAX_WEIGHT: f64 = 50.0;

/// `ln sum_c exp(lambda * lp[c])`, max-shifted.
pub fn log_norm(lp: &[f64], lambda: f64) -> f64 {
    let m = lp.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(lambda * b));
    m + lp.iter().map(|&v| (lambda * v - m).exp()).sum::<f64>().ln()
}

/// The weight that maximises the objective above, searched from `start`.
pub fn fit(
    m: &ModelEvidence,
    r: &[f64],
    k: usize,
    has_answers: impl Fn(usize) -> bool + Sync,
    start: f64,
) -> f64 {
    let used = |t: &usize| m.covered[*t] && has_answers(*t);
    if !(0..m.covered.len()).any(|t| used(&t)) {
        return 1.0;
    }
    // (first, second) derivative of the objective at `lambda`.
    let derivs = |lambda: f64| -> (f64, f64) {
        let term = |t: usize| {
            if !used(&t) {
                return (0.0, 0.0);
            }
            let lp = &m.log_probs[t * k..t * k + k];
            let rt = &r[t * k..t * k + k];
            let lz = log_norm(lp, lambda);
            let (mut mean, mut sq, mut target) = (0.0, 0.0, 0.0);
            for c in 0..k {
                let p = (lambda * lp[c] - lz).exp();
                mean += p * lp[c];
                sq += p * lp[c] * lp[c];
                target += rt[c] * lp[c];
            }
            (target - mean, -(sq - mean * mean).max(0.0))
        };
        crate::ordered_sum::fold(m.covered.len(), (0.0, 0.0), term, |a, b| {
            (a.0 + b.0, a.1 + b.1)
        })
    };
    // The maximum at a bound: the slope there says so.
    if derivs(MAX_WEIGHT).0 >= 0.0 {
        return MAX_WEIGHT;
    }
    if derivs(0.0).0 <= 0.0 {
        return 0.0;
    }
    let (mut lo, mut hi) = (0.0, MAX_WEIGHT);
    let mut lambda = start.clamp(lo, hi);
    for _ in 0..60 {
        let (d1, d2) = derivs(lambda);
        if !d1.is_finite() || d1 == 0.0 {
            break;
        }
        // Concave: a positive slope means the maximum lies above.
        if d1 > 0.0 {
            lo = lambda;
        } else {
            hi = lambda;
        }
        let newton = lambda - d1 / d2;
        let next = if d2 < 0.0 && newton > lo && newton < hi {
            newton
        } else {
            0.5 * (lo + hi)
        };
        let done = (next - lambda).abs() <= 1e-9 * lambda.max(1.0) || hi - lo <= 1e-12;
        lambda = next;
        if done {
            break;
        }
    }
    lambda
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence(probs: &[[f64; 2]]) -> (Vec<f64>, Vec<bool>) {
        let lp = probs.iter().flat_map(|r| r.map(f64::ln)).collect();
        (lp, vec![true; probs.len()])
    }

    #[test]
    fn weight_follows_agreement() {
        // The model says 0.8 for the class the annotators hold 80% of the time: weight 1.
        let probs: Vec<[f64; 2]> = (0..10).map(|_| [0.8, 0.2]).collect();
        let (lp, covered) = evidence(&probs);
        let m = ModelEvidence {
            log_probs: &lp,
            covered: &covered,
        };
        let r: Vec<f64> = (0..10)
            .flat_map(|t| if t < 8 { [1.0, 0.0] } else { [0.0, 1.0] })
            .collect();
        let w = fit(&m, &r, 2, |_| true, 1.0);
        assert!((w - 1.0).abs() < 1e-6, "{w}");
        // Annotators at 50/50 whatever the model says: weight 0.
        let r = vec![0.5; 20];
        assert!(fit(&m, &r, 2, |_| true, 3.0) < 1e-6);
        // Annotators always with the model: the largest weight.
        let r: Vec<f64> = (0..10).flat_map(|_| [1.0, 0.0]).collect();
        assert_eq!(fit(&m, &r, 2, |_| true, 1.0), MAX_WEIGHT);
        // Nothing to learn from: face value.
        assert_eq!(fit(&m, &r, 2, |_| false, 0.3), 1.0);
    }
}
