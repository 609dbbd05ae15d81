//! Money in integer minor units: Meta's per-currency offsets and display.

/// Currencies Meta counts in whole units (offset 1): a budget of 1 is 1 JPY.
/// Meta's own table, not ISO 4217 (TWD has offset 1 here).
const OFFSET_ONE: [&str; 11] = ["CLP", "COP", "CRC", "HUF", "ISK", "IDR", "JPY", "KRW", "PYG", "TWD", "VND"];

/// ISO 4217 codes of currencies in circulation, sorted: the codes an ad
/// account can be billed in (Meta's currency table is a subset), plus VEF,
/// which Meta's table still lists. Funds, metals and test codes (`XXX`,
/// `XAU`, `USN`) are left out: no account is billed in them.
const ISO_4217: [&str; 160] = [
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BHD", "BIF",
    "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF", "CLP", "CNY", "COP", "CRC",
    "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS",
    "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD",
    "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL",
    "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MYR", "MZN", "NAD",
    "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD",
    "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SLL", "SOS", "SRD", "SSP", "STN", "SVC",
    "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS",
    "VED", "VEF", "VES", "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG", "ZWL",
];

/// Whether `code` is an ISO 4217 currency an account can be billed in.
pub fn is_known_currency(code: &str) -> bool {
    ISO_4217.binary_search(&code).is_ok()
}

/// Minor units per major unit for `currency` in Meta's table: 1 or 100.
pub fn minor_unit_offset(currency: &str) -> i64 {
    if OFFSET_ONE.contains(&currency) { 1 } else { 100 }
}

/// Formats an amount for people: `$1,234.50` for USD, `1,500 JPY`, `12.50 EUR`.
pub fn format_minor(amount_minor: i64, currency: &str) -> String {
    let offset = minor_unit_offset(currency);
    let negative = amount_minor < 0;
    let abs = amount_minor.unsigned_abs();
    let major = abs / offset as u64;
    let mut digits = group_thousands(major);
    if offset == 100 {
        digits = format!("{digits}.{:02}", abs % 100);
    }
    let sign = if negative { "-" } else { "" };
    if currency == "USD" { format!("{sign}${digits}") } else { format!("{sign}{digits} {currency}") }
}

fn group_thousands(n: u64) -> String {
    let raw = n.to_string();
    let mut out = String::with_capacity(raw.len() + raw.len() / 3);
    for (i, ch) in raw.chars().enumerate() {
        if i > 0 && (raw.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_currency() {
        assert_eq!(format_minor(30_000, "USD"), "$300.00");
        assert_eq!(format_minor(123_456_789, "USD"), "$1,234,567.89");
        assert_eq!(format_minor(-5, "USD"), "-$0.05");
        assert_eq!(format_minor(1_500, "JPY"), "1,500 JPY");
        assert_eq!(format_minor(1_250, "EUR"), "12.50 EUR");
        assert_eq!(format_minor(i64::MIN, "USD"), "-$92,233,720,368,547,758.08");
    }

    #[test]
    fn offsets_follow_metas_table() {
        assert_eq!(minor_unit_offset("USD"), 100);
        assert_eq!(minor_unit_offset("TWD"), 1);
        assert_eq!(minor_unit_offset("BHD"), 100);
    }

    #[test]
    fn currencies_are_iso_4217_codes() {
        assert!(ISO_4217.windows(2).all(|w| w[0] < w[1]), "the table must stay sorted for binary search");
        for code in ["USD", "EUR", "JPY", "BHD", "JOD", "TWD", "VND"] {
            assert!(is_known_currency(code), "{code}");
        }
        for code in OFFSET_ONE {
            assert!(is_known_currency(code), "Meta's offset-1 currency {code}");
        }
        for code in ["USS", "ZZZ", "XXX", "XAU", "usd", "US", "USDD", ""] {
            assert!(!is_known_currency(code), "{code}");
        }
    }
}
