//! Exact decimal parsing of Meta's money strings: `spend` and action values
//! arrive in major units (`"100.50"`) and become integer minor units with the
//! currency's offset, rounded half-even once, never through a float.
use std::fmt;

/// Why a decimal string could not be turned into minor units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecimalError {
    /// Not a decimal number (`"12,5"`, `""`, `"NaN"`).
    Malformed,
    /// The amount does not fit in an i64 of minor units.
    Overflow,
}

impl fmt::Display for DecimalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed => f.write_str("not a decimal number"),
            Self::Overflow => f.write_str("amount out of range"),
        }
    }
}

/// Significant digits kept exactly; more than Meta ever sends, few enough that
/// `mantissa * offset` cannot overflow an i128.
const MAX_DIGITS: usize = 30;

/// Parses a decimal in major units (`"100.50"`, `"-3"`, `"1.5e2"`) into minor
/// units: `value * offset`, rounded half-even. `offset` is a power of ten
/// (100 for USD, 1 for JPY).
pub fn major_to_minor(raw: &str, offset: i64) -> Result<i64, DecimalError> {
    let (negative, mantissa, exponent) = parse_parts(raw.trim())?;
    if mantissa == 0 {
        return Ok(0);
    }
    let scaled = mantissa.checked_mul(i128::from(offset)).ok_or(DecimalError::Overflow)?;
    let magnitude = if exponent >= 0 {
        let factor = pow10(exponent.unsigned_abs()).ok_or(DecimalError::Overflow)?;
        scaled.checked_mul(factor).ok_or(DecimalError::Overflow)?
    } else {
        match pow10(exponent.unsigned_abs()) {
            Some(divisor) => round_half_even(scaled, divisor),
            // A divisor beyond i128 dwarfs any 30-digit numerator: the value rounds to 0.
            None => 0,
        }
    };
    let signed = if negative { -magnitude } else { magnitude };
    i64::try_from(signed).map_err(|_| DecimalError::Overflow)
}

/// Parses a whole count (`"361324"`, or `"12.0"`), rounding half-even.
pub fn parse_count(raw: &str) -> Result<i64, DecimalError> {
    major_to_minor(raw, 1)
}

/// Formats minor units as Meta writes major units: `"100.50"` for offset 100,
/// `"1500"` for offset 1.
pub fn minor_to_major(amount_minor: i64, offset: i64) -> String {
    if offset <= 1 {
        return amount_minor.to_string();
    }
    let decimals = offset.ilog10() as usize;
    let sign = if amount_minor < 0 { "-" } else { "" };
    let abs = amount_minor.unsigned_abs();
    let offset = offset.unsigned_abs();
    format!("{sign}{}.{:0decimals$}", abs / offset, abs % offset)
}

/// Splits `[+-]digits[.digits][(e|E)[+-]digits]` into sign, mantissa and a
/// power-of-ten exponent.
fn parse_parts(s: &str) -> Result<(bool, i128, i64), DecimalError> {
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (number, exp_part) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let (int_part, frac_part) = match number.split_once('.') {
        Some((i, f)) => (i, f),
        None => (number, ""),
    };
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if int_part.len() + frac_part.len() == 0 || !all_digits(int_part) || !all_digits(frac_part) {
        return Err(DecimalError::Malformed);
    }
    let mut exponent: i64 = match exp_part {
        Some(e) => parse_exponent(e)?,
        None => 0,
    };
    let mut mantissa: i128 = 0;
    let mut significant = 0usize;
    for (i, b) in int_part.bytes().chain(frac_part.bytes()).enumerate() {
        let is_fraction = i >= int_part.len();
        if significant >= MAX_DIGITS {
            // Digits past the precision limit: integer ones still scale the value.
            if !is_fraction {
                exponent += 1;
            } else if b != b'0' {
                // A sticky low digit keeps half-even rounding honest.
                mantissa |= 1;
            }
            continue;
        }
        if is_fraction {
            exponent -= 1;
        }
        let digit = i128::from(b - b'0');
        if mantissa == 0 && digit == 0 {
            continue;
        }
        mantissa = mantissa * 10 + digit;
        significant += 1;
    }
    Ok((negative && mantissa != 0, mantissa, exponent))
}

fn parse_exponent(e: &str) -> Result<i64, DecimalError> {
    let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
    if digits.is_empty() || digits.len() > 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DecimalError::Malformed);
    }
    e.parse().map_err(|_| DecimalError::Malformed)
}

fn pow10(exp: u64) -> Option<i128> {
    10i128.checked_pow(u32::try_from(exp).ok()?)
}

fn round_half_even(numerator: i128, divisor: i128) -> i128 {
    let (q, r) = (numerator / divisor, numerator % divisor);
    match (2 * r).cmp(&divisor) {
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal if q % 2 == 1 => q + 1,
        _ => q,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn parses_meta_money_strings() {
        assert_eq!(major_to_minor("100.50", 100), Ok(10_050));
        assert_eq!(major_to_minor("5339.5", 100), Ok(533_950));
        assert_eq!(major_to_minor("0", 100), Ok(0));
        assert_eq!(major_to_minor("7", 100), Ok(700));
        assert_eq!(major_to_minor(".5", 100), Ok(50));
        assert_eq!(major_to_minor("3.", 100), Ok(300));
        assert_eq!(major_to_minor("-2.25", 100), Ok(-225));
        assert_eq!(major_to_minor("1500", 1), Ok(1_500));
        assert_eq!(major_to_minor(" 12.00 ", 100), Ok(1_200));
        assert_eq!(major_to_minor("1.5e2", 100), Ok(15_000));
        assert_eq!(major_to_minor("125E-2", 100), Ok(125));
    }

    #[test]
    fn rounds_half_even_exactly_once() {
        assert_eq!(major_to_minor("0.125", 100), Ok(12));
        assert_eq!(major_to_minor("0.135", 100), Ok(14));
        assert_eq!(major_to_minor("0.1250000001", 100), Ok(13));
        assert_eq!(major_to_minor("-0.125", 100), Ok(-12));
        assert_eq!(major_to_minor("1234.5", 1), Ok(1_234));
        assert_eq!(major_to_minor("1235.5", 1), Ok(1_236));
        // A float would see 1.005 as 1.00499999...; the exact parser sees the tie.
        assert_eq!(major_to_minor("1.005", 100), Ok(100));
        assert_eq!(major_to_minor("1.015", 100), Ok(102));
        assert_eq!(major_to_minor("0.00000000000000000000000000000000000000000001", 100), Ok(0));
    }

    #[test]
    fn long_inputs_keep_their_magnitude_and_tie_breaks() {
        let many_zeros = format!("0.125{}1", "0".repeat(40));
        assert_eq!(major_to_minor(&many_zeros, 100), Ok(13));
        assert_eq!(major_to_minor(&format!("1{}", "0".repeat(16)), 1), Ok(10_000_000_000_000_000));
        assert_eq!(major_to_minor(&format!("1{}", "0".repeat(40)), 1), Err(DecimalError::Overflow));
        assert_eq!(major_to_minor("92233720368547758.07", 100), Ok(i64::MAX));
        assert_eq!(major_to_minor("92233720368547758.08", 100), Err(DecimalError::Overflow));
        assert_eq!(major_to_minor("1e999999", 100), Err(DecimalError::Overflow));
    }

    #[test]
    fn rejects_what_is_not_a_decimal() {
        for bad in ["", "-", ".", "1,5", "1.2.3", "abc", "NaN", "inf", "1e", "1e+", "--1", "0x10", "1 2"] {
            assert_eq!(major_to_minor(bad, 100), Err(DecimalError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn formats_major_units() {
        assert_eq!(minor_to_major(10_050, 100), "100.50");
        assert_eq!(minor_to_major(5, 100), "0.05");
        assert_eq!(minor_to_major(-5, 100), "-0.05");
        assert_eq!(minor_to_major(1_500, 1), "1500");
        assert_eq!(minor_to_major(i64::MIN, 100), "-92233720368547758.08");
    }

    proptest! {
        #[test]
        fn formatting_then_parsing_round_trips(minor in any::<i64>(), use_cents in any::<bool>()) {
            let offset = if use_cents { 100 } else { 1 };
            prop_assert_eq!(major_to_minor(&minor_to_major(minor, offset), offset), Ok(minor));
        }

        #[test]
        fn extra_digits_round_half_even(
            cents in 0i64..1_000_000_000_000,
            extra in "[0-9]{1,12}",
        ) {
            let raw = format!("{}{extra}", minor_to_major(cents, 100));
            // Compare the dropped digits with one half, as strings: no arithmetic shared
            // with the parser.
            let half = format!("5{}", "0".repeat(extra.len() - 1));
            let up = match extra.cmp(&half) {
                std::cmp::Ordering::Greater => true,
                std::cmp::Ordering::Equal => cents % 2 == 1,
                std::cmp::Ordering::Less => false,
            };
            prop_assert_eq!(major_to_minor(&raw, 100), Ok(cents + i64::from(up)));
        }
    }
}
