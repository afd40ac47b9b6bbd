//! Human-readable durations (`250ms`, `1.5s`, `2m`) and byte sizes
//! (`64KiB`, `10MB`) in the config file.
//!
//! This module owns the syntax of one duration or size string and nothing
//! else: it does not know which values a key allows or where a value came
//! from (`validate` decides that and adds the key path to the message).

use std::time::Duration;

/// The accepted form, repeated in every error so the fix is on screen.
const EXPECTED: &str =
    "expected a non-negative number followed by a unit, e.g. 250ms, 1.5s, 2m; units: ns, us, ms, s, m, h";

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Parses `<digits>[.<digits>]<unit>`, unit one of `ns`, `us` (or `µs`), `ms`,
/// `s`, `m`, `h`.
///
/// The number is read as an exact decimal rather than an `f64`, so `0.1s` is
/// exactly 100 ms. Digits beyond nanosecond precision are dropped.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = |why: &str| format!("invalid duration {text:?}: {why}; {EXPECTED}");

    if text.trim().is_empty() {
        return Err(bad("it is empty"));
    }
    if text.starts_with('-') {
        return Err(bad("it is negative"));
    }
    let number_len = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(number_len);
    if number.is_empty() {
        return Err(bad("it does not start with a number"));
    }
    if unit.is_empty() {
        return Err(bad("it has no unit"));
    }
    let unit_nanos: u128 = match unit {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => NANOS_PER_SEC,
        "m" => 60 * NANOS_PER_SEC,
        "h" => 3_600 * NANOS_PER_SEC,
        _ => return Err(bad(&format!("unknown unit {unit:?}"))),
    };

    let (whole, fraction) = match number.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (number, ""),
    };
    let malformed =
        whole.is_empty() || (number.contains('.') && fraction.is_empty()) || fraction.contains('.');
    if malformed {
        return Err(bad(&format!("{number:?} is not a decimal number")));
    }

    let too_large = || bad("it is too large");
    let mut nanos = whole
        .parse::<u128>()
        .ok()
        .and_then(|whole| whole.checked_mul(unit_nanos))
        .ok_or_else(too_large)?;
    // Each fractional digit is worth a tenth of the previous one; stop once a
    // digit is worth less than a nanosecond.
    let mut place = unit_nanos;
    for digit in fraction.bytes() {
        place /= 10;
        if place == 0 {
            break;
        }
        nanos += u128::from(digit - b'0') * place;
    }

    let secs = u64::try_from(nanos / NANOS_PER_SEC).map_err(|_| too_large())?;
    let subsec = u32::try_from(nanos % NANOS_PER_SEC).map_err(|_| too_large())?;
    Ok(Duration::new(secs, subsec))
}

/// The accepted size form, repeated in every error so the fix is on screen.
const SIZE_EXPECTED: &str = "expected a whole number of bytes, optionally followed by a unit, \
     e.g. 512B, 64KiB, 10MB; units: B, KB, MB, GB (powers of 1000), KiB, MiB, GiB (powers of 1024)";

/// Parses `<digits>[unit]` into bytes, unit one of `B`, `KB`, `MB`, `GB`
/// (powers of 1000) or `KiB`, `MiB`, `GiB` (powers of 1024); no unit means
/// bytes.
///
/// Only whole numbers are accepted: `1.5KiB` would be a fraction of a byte
/// for some units, and every size can be written exactly in a smaller unit.
/// Units are case-sensitive, like duration units, because `kb` and `Kb`
/// (kilobits) are too easily confused with `KB`.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let bad = |why: &str| format!("invalid size {text:?}: {why}; {SIZE_EXPECTED}");

    if text.trim().is_empty() {
        return Err(bad("it is empty"));
    }
    if text.starts_with('-') {
        return Err(bad("it is negative"));
    }
    let number_len = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(number_len);
    if number.is_empty() {
        return Err(bad("it does not start with a number"));
    }
    if unit.starts_with('.') {
        return Err(bad(
            "it is not a whole number; use a smaller unit instead, e.g. 1536KiB for 1.5MiB",
        ));
    }
    let unit_bytes: u64 = match unit {
        "" | "B" => 1,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(bad(&format!("unknown unit {unit:?}"))),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|number| number.checked_mul(unit_bytes))
        .ok_or_else(|| bad("it is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Duration {
        parse_duration(text).unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
    }

    fn err(text: &str) -> String {
        match parse_duration(text) {
            Ok(d) => panic!("{text:?} should be rejected, got {d:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn every_unit() {
        assert_eq!(ok("100ns"), Duration::from_nanos(100));
        assert_eq!(ok("100us"), Duration::from_micros(100));
        assert_eq!(ok("100µs"), Duration::from_micros(100));
        assert_eq!(ok("250ms"), Duration::from_millis(250));
        assert_eq!(ok("1s"), Duration::from_secs(1));
        assert_eq!(ok("2m"), Duration::from_secs(120));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
    }

    #[test]
    fn fractions_are_exact() {
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("0.1s"), Duration::from_millis(100));
        assert_eq!(ok("0.25m"), Duration::from_secs(15));
        assert_eq!(ok("1.5ms"), Duration::from_micros(1500));
        // Below one nanosecond the extra digits are dropped, not rounded.
        assert_eq!(ok("1.9ns"), Duration::from_nanos(1));
        assert_eq!(ok("0.0000000019s"), Duration::from_nanos(1));
    }

    #[test]
    fn zero_is_a_duration() {
        // Whether zero is allowed depends on the key; `validate` decides.
        assert_eq!(ok("0s"), Duration::ZERO);
        assert_eq!(ok("0ms"), Duration::ZERO);
    }

    #[test]
    fn large_values() {
        assert_eq!(ok("1000000h"), Duration::from_secs(3_600_000_000));
        assert!(err("99999999999999999999999999999999999999999h").contains("too large"));
        assert!(err("18446744073709551616s").contains("too large"));
    }

    #[test]
    fn rejects_empty() {
        let e = err("");
        assert!(e.contains("invalid duration \"\""), "{e}");
        assert!(e.contains("empty"), "{e}");
        assert!(e.contains("e.g. 250ms"), "{e}");
        assert!(err("   ").contains("empty"));
    }

    #[test]
    fn rejects_negative() {
        let e = err("-1s");
        assert!(e.contains("\"-1s\""), "{e}");
        assert!(e.contains("negative"), "{e}");
    }

    #[test]
    fn rejects_missing_unit() {
        let e = err("10");
        assert!(e.contains("\"10\""), "{e}");
        assert!(e.contains("no unit"), "{e}");
        assert!(e.contains("units: ns, us, ms, s, m, h"), "{e}");
        assert!(err("0").contains("no unit"));
    }

    #[test]
    fn rejects_unknown_unit() {
        let e = err("1x");
        assert!(e.contains("\"1x\""), "{e}");
        assert!(e.contains("unknown unit \"x\""), "{e}");
        assert!(err("5 s").contains("unknown unit \" s\""));
        assert!(err("1sec").contains("unknown unit"));
        assert!(err("1S").contains("unknown unit"));
        assert!(err("1m30s").contains("unknown unit"));
    }

    #[test]
    fn rejects_malformed_numbers() {
        assert!(err("s").contains("does not start with a number"));
        assert!(err("+1s").contains("does not start with a number"));
        assert!(err(".5s").contains("not a decimal number"));
        assert!(err("1.s").contains("not a decimal number"));
        assert!(err("1.2.3s").contains("not a decimal number"));
        assert!(err("1e3ms").contains("unknown unit"));
    }

    fn size(text: &str) -> u64 {
        parse_size(text).unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
    }

    fn size_err(text: &str) -> String {
        match parse_size(text) {
            Ok(n) => panic!("{text:?} should be rejected, got {n}"),
            Err(e) => e,
        }
    }

    #[test]
    fn every_size_unit() {
        assert_eq!(size("512"), 512);
        assert_eq!(size("512B"), 512);
        assert_eq!(size("10KB"), 10_000);
        assert_eq!(size("10MB"), 10_000_000);
        assert_eq!(size("2GB"), 2_000_000_000);
        assert_eq!(size("64KiB"), 65_536);
        assert_eq!(size("1MiB"), 1_048_576);
        assert_eq!(size("1GiB"), 1_073_741_824);
        assert_eq!(size("0"), 0);
        assert_eq!(size("0KiB"), 0);
        assert_eq!(size("007KiB"), 7 * 1024);
    }

    #[test]
    fn large_sizes() {
        assert_eq!(size("17179869183GiB"), 17_179_869_183 << 30);
        assert!(size_err("17179869184GiB").contains("too large"));
        assert!(size_err("18446744073709551616").contains("too large"));
        assert_eq!(size("18446744073709551615"), u64::MAX);
    }

    #[test]
    fn size_errors_say_what_is_wrong_and_show_the_form() {
        let e = size_err("");
        assert!(e.contains("invalid size \"\": it is empty"), "{e}");
        assert!(e.contains("e.g. 512B, 64KiB, 10MB"), "{e}");
        assert!(e.contains("KiB, MiB, GiB (powers of 1024)"), "{e}");
        assert!(size_err("  ").contains("empty"));
        assert!(size_err("-1KiB").contains("negative"));
        assert!(size_err("KiB").contains("does not start with a number"));
        assert!(size_err("+1KiB").contains("does not start with a number"));
        assert!(size_err(".5MiB").contains("does not start with a number"));
        let e = size_err("1.5MiB");
        assert!(e.contains("not a whole number"), "{e}");
        assert!(e.contains("1536KiB"), "{e}");
    }

    #[test]
    fn size_units_are_exact_and_case_sensitive() {
        for (text, unit) in [
            ("64kib", "kib"),
            ("64kb", "kb"),
            ("64K", "K"),
            ("64Kb", "Kb"),
            ("1TB", "TB"),
            ("64 KiB", " KiB"),
            ("1e3", "e3"),
            ("1KiB ", "KiB "),
        ] {
            let e = size_err(text);
            assert!(
                e.contains(&format!("unknown unit {unit:?}")),
                "{text:?}: {e}"
            );
        }
    }
}
