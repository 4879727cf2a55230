//! The digamma function, for the variational methods (E[ln p] under a Dirichlet is
//! `digamma(a_k) - digamma(sum a)`).

/// digamma(x) for x > 0: recurrence up to x >= 6, then the asymptotic series (error < 1e-12).
pub fn digamma(mut x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return f64::NEG_INFINITY;
    }
    let mut r = 0.0;
    while x < 6.0 {
        r -= 1.0 / x;
        x += 1.0;
    }
    let f = 1.0 / (x * x);
    let series = f
        * (-1.0 / 12.0
            + f * (1.0 / 120.0
                + f * (-1.0 / 252.0
                    + f * (1.0 / 240.0 + f * (-1.0 / 132.0 + f * 691.0 / 32760.0)))));
    r + x.ln() - 0.5 / x + series
}

#[cfg(test)]
mod tests {
    use super::digamma;

    #[test]
    fn known_values() {
        // digamma(1) = -Euler-Mascheroni; digamma(0.5) = -gamma - 2 ln 2; digamma(10).
        assert!((digamma(1.0) + 0.577_215_664_901_532_9).abs() < 1e-12);
        assert!((digamma(0.5) - (-0.577_215_664_901_532_9 - 2.0 * 2f64.ln())).abs() < 1e-12);
        assert!((digamma(10.0) - 2.251_752_589_066_721).abs() < 1e-12);
        assert_eq!(digamma(0.0), f64::NEG_INFINITY);
    }
}
