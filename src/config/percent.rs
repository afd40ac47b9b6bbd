//! Percentages in the config file (`1%`, `12.5%`), read as the fraction they
//! stand for.
//!
//! This module owns the syntax of one percentage. It does not check a range
//! (a rate key allows 0% to 100%, which `validate` checks) and does not know
//! which key the value belongs to: [`PercentError`] says what is wrong, and
//! `validate` words the message around the key and its example.

use std::str::FromStr;

/// A percentage as a fraction: `1%` is 0.01.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Percent(f64);

impl Percent {
    pub(crate) fn fraction(self) -> f64 {
        self.0
    }
}

/// Why a text is not a percentage; each reads after the text, as in
/// `"5" has no '%'`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PercentError {
    #[error("has no '%'")]
    NoPercentSign,
    #[error("is not a percentage")]
    NotANumber,
}

impl FromStr for Percent {
    type Err = PercentError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let Some(number) = text.strip_suffix('%') else {
            return Err(PercentError::NoPercentSign);
        };
        // Digits with at most one inner '.', as for durations; `f64::from_str`
        // alone would also take `inf`, `NaN` and `1e2`.
        let (whole, fraction) = number.split_once('.').unwrap_or((number, "0"));
        let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        match number.parse::<f64>() {
            Ok(percent) if digits(whole) && digits(fraction) => Ok(Self(percent / 100.0)),
            _ => Err(PercentError::NotANumber),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<f64, PercentError> {
        text.parse::<Percent>().map(Percent::fraction)
    }

    #[test]
    fn percentages_become_fractions() {
        assert_eq!(parse("1%"), Ok(0.01));
        assert_eq!(parse("0.5%"), Ok(0.005));
        assert_eq!(parse("12.5%"), Ok(0.125));
        assert_eq!(parse("007%"), Ok(0.07));
        assert_eq!(parse("0%"), Ok(0.0));
        assert_eq!(parse("100%"), Ok(1.0));
        // The range belongs to the key, not to the syntax.
        assert_eq!(parse("250%"), Ok(2.5));
    }

    #[test]
    fn what_is_wrong_with_a_non_percentage() {
        for text in ["", "1", "0.01", "% 1"] {
            assert_eq!(parse(text), Err(PercentError::NoPercentSign), "{text:?}");
        }
        for text in [
            "%", "1%%", "1.%", ".5%", "1..2%", "+1%", "-1%", "1e2%", "NaN%", "inf%", " 1%",
        ] {
            assert_eq!(parse(text), Err(PercentError::NotANumber), "{text:?}");
        }
        assert_eq!(PercentError::NoPercentSign.to_string(), "has no '%'");
        assert_eq!(PercentError::NotANumber.to_string(), "is not a percentage");
    }
}
