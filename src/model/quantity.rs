//! Kubernetes resource quantities (`500m`, `1.5Gi`, `2e3`, `129e-3`, `10Ki`…), parsed completely.
//!
//! The grammar is apimachinery's `resource.Quantity`: a signed decimal number, then either a binary
//! suffix (Ki…Ei), a decimal SI suffix (n, u, m, "", k, M, G, T, P, E) or a decimal exponent (e/E).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantityError(pub String);

impl fmt::Display for QuantityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid quantity {:?}", self.0)
    }
}

impl std::error::Error for QuantityError {}

/// Parses a quantity into its value in base units (cores for CPU, bytes for memory).
pub fn parse_quantity(text: &str) -> Result<f64, QuantityError> {
    let err = || QuantityError(text.to_string());
    let s = text.trim();
    let number_end = s
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || ((c == '+' || c == '-') && i == 0)))
        .map_or(s.len(), |(i, _)| i);
    let (number, suffix) = s.split_at(number_end);
    if number.is_empty() || number == "+" || number == "-" || number == "." {
        return Err(err());
    }
    if number.matches('.').count() > 1 {
        return Err(err());
    }
    let value: f64 = number.parse().map_err(|_| err())?;
    let multiplier = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exp if exp.starts_with(['e', 'E']) => {
            let digits = &exp[1..];
            let exponent: i32 = digits.parse().map_err(|_| err())?;
            10f64.powi(exponent)
        }
        _ => return Err(err()),
    };
    let result = value * multiplier;
    if result.is_finite() { Ok(result) } else { Err(err()) }
}

/// CPU in millicores, the unit every CPU column uses.
pub fn parse_cpu_millis(text: &str) -> Result<f64, QuantityError> {
    parse_quantity(text).map(|cores| cores * 1000.0)
}

/// Memory in bytes.
pub fn parse_bytes(text: &str) -> Result<f64, QuantityError> {
    parse_quantity(text)
}

/// `480m`, `1.25` (cores) — compact, the way kubectl top prints it.
pub fn format_cpu_millis(millis: f64) -> String {
    if millis >= 10_000.0 {
        format!("{:.0}", millis / 1000.0)
    } else if millis >= 1000.0 {
        format!("{:.2}", millis / 1000.0)
    } else {
        format!("{:.0}m", millis)
    }
}

/// A ratio (0–1) as a whole percentage: `62%`.
pub fn format_ratio(ratio: f64) -> String {
    format!("{:.0}%", ratio * 100.0)
}

/// `512Mi`, `1.5Gi` — binary units, as Kubernetes manifests usually state memory.
pub fn format_bytes(bytes: f64) -> String {
    const UNITS: [&str; 6] = ["", "Ki", "Mi", "Gi", "Ti", "Pi"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value >= 100.0 || value.fract() == 0.0 {
        format!("{value:.0}{}", UNITS[unit])
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= b.abs() * 1e-12 + 1e-15
    }

    #[test]
    fn every_suffix_parses() {
        let cases = [
            ("1", 1.0),
            ("0", 0.0),
            ("250m", 0.25),
            ("487558164n", 0.487558164),
            ("7338891n", 0.007338891),
            ("100u", 1e-4),
            ("1k", 1e3),
            ("512M", 512e6),
            ("2G", 2e9),
            ("1T", 1e12),
            ("1P", 1e15),
            ("1E", 1e18),
            ("14520Ki", 14520.0 * 1024.0),
            ("128Mi", 128.0 * 1048576.0),
            ("1.5Gi", 1.5 * 1073741824.0),
            ("1Ti", 1099511627776.0),
            ("1Pi", 1125899906842624.0),
            ("1Ei", 1152921504606846976.0),
            ("1e3", 1000.0),
            ("129e6", 129e6),
            ("129e-3", 0.129),
            ("1E3", 1000.0),
            ("0.5", 0.5),
            (".5", 0.5),
            ("+1", 1.0),
            ("-1", -1.0),
            ("  2  ", 2.0),
        ];
        for (text, want) in cases {
            let got = parse_quantity(text).unwrap_or_else(|e| panic!("{e}"));
            assert!(close(got, want), "{text}: got {got}, want {want}");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in ["", "m", "Ki", "1x", "1.2.3", "1e", "1e+", "abc", "1 Gi", "--1", "1Gii", "."] {
            assert!(parse_quantity(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn cpu_and_memory_formatting_is_compact() {
        assert_eq!(parse_cpu_millis("250m").unwrap(), 250.0);
        assert_eq!(format_cpu_millis(480.0), "480m");
        assert_eq!(format_cpu_millis(1500.0), "1.50");
        assert_eq!(format_bytes(512.0 * 1048576.0), "512Mi");
        assert_eq!(format_bytes(1.5 * 1073741824.0), "1.5Gi");
        assert_eq!(format_bytes(100.0), "100");
        assert_eq!(format_bytes(64.0 * 1048576.0), "64Mi");
    }
}
