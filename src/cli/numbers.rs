//! Value parsers for numeric flags: clap refuses NaN, infinities, 0 where it means nothing and
//! values out of range with exit 2 and a message naming the flag (`invalid value 'NaN' for
//! '--learning-rate <LEARNING_RATE>': ...`).

/// A whole number of at least 1 (counts: workers, epochs, batch sizes, ...).
pub fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(v) => Ok(v),
        Err(e) => Err(e.to_string()),
    }
}

/// Channels of an image: 1 (grayscale) or 3 (RGB).
pub fn channels(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(c @ (1 | 3)) => Ok(c),
        _ => Err("must be 1 (grayscale) or 3 (RGB)".into()),
    }
}

fn finite_f64(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|e| format!("{e}"))?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err("must be a finite number".into())
    }
}

/// A finite number above 0 (rates, smoothing).
pub fn positive_f32(s: &str) -> Result<f32, String> {
    let v = finite_f64(s)? as f32;
    if v > 0.0 && v.is_finite() {
        Ok(v)
    } else {
        Err("must be a finite number above 0".into())
    }
}

/// A finite number of 0 or more (tolerances).
pub fn non_negative_f64(s: &str) -> Result<f64, String> {
    let v = finite_f64(s)?;
    if v >= 0.0 {
        Ok(v)
    } else {
        Err("must be 0 or more".into())
    }
}

/// A number from 0 to 1 (thresholds, fractions).
pub fn fraction_f32(s: &str) -> Result<f32, String> {
    let v = finite_f64(s)?;
    if (0.0..=1.0).contains(&v) {
        Ok(v as f32)
    } else {
        Err("must be a number from 0 to 1".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_infinity_zero_and_out_of_range_are_refused() {
        assert!(at_least_one("0").is_err());
        assert_eq!(at_least_one("3"), Ok(3));
        for bad in ["NaN", "inf", "-inf", "0", "-1e-3", "1e39"] {
            assert!(positive_f32(bad).is_err(), "{bad}");
        }
        assert_eq!(positive_f32("0.001"), Ok(0.001));
        assert!(non_negative_f64("-1").is_err() && non_negative_f64("nan").is_err());
        assert_eq!(non_negative_f64("0"), Ok(0.0));
        assert!(fraction_f32("1.5").is_err() && fraction_f32("NaN").is_err());
        assert_eq!(fraction_f32("1"), Ok(1.0));
    }
}
