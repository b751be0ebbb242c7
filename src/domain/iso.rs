//! ISO 3166-1 alpha-2 country codes and ISO 4217 currency codes, for input
//! validation (a typo like "UK" or "EURO" is a 422, not a new country).

const COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL \
BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM \
DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY \
HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC \
LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE \
NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD \
SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA \
UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

const CURRENCIES: &str = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB \
BRL BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP \
GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW \
KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN \
NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS \
SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD \
XOF XPF YER ZAR ZMW ZWL";

pub fn is_country(code: &str) -> bool {
    code.len() == 2 && COUNTRIES.split_ascii_whitespace().any(|c| c == code)
}

pub fn is_currency(code: &str) -> bool {
    code.len() == 3 && CURRENCIES.split_ascii_whitespace().any(|c| c == code)
}

/// Digits after the decimal point in `currency`'s major unit (ISO 4217):
/// 0 for the yen and friends, 3 for the dinars, 2 otherwise.
pub fn minor_unit_digits(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

/// `minor` minor units of `currency` written in major units: `-1250.05`.
pub fn format_major(minor: i64, currency: &str) -> String {
    let digits = minor_unit_digits(currency);
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    if digits == 0 {
        return format!("{sign}{abs}");
    }
    let scale = 10u64.pow(digits);
    format!(
        "{sign}{}.{:0width$}",
        abs / scale,
        abs % scale,
        width = digits as usize
    )
}

/// validator hook: an upper-case ISO 3166-1 alpha-2 code.
pub fn validate_country(code: &str) -> Result<(), validator::ValidationError> {
    if is_country(code) {
        Ok(())
    } else {
        Err(validator::ValidationError::new("country")
            .with_message("must be an ISO 3166-1 alpha-2 code such as \"DE\"".into()))
    }
}

/// validator hook: an upper-case ISO 4217 code.
pub fn validate_currency(code: &str) -> Result<(), validator::ValidationError> {
    if is_currency(code) {
        Ok(())
    } else {
        Err(validator::ValidationError::new("currency")
            .with_message("must be an ISO 4217 code such as \"EUR\"".into()))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn codes() {
        assert_eq!(COUNTRIES.split_ascii_whitespace().count(), 249);
        assert!(is_country("TR") && is_country("GB") && !is_country("UK") && !is_country("tr"));
        assert!(
            is_currency("EUR") && is_currency("USD") && !is_currency("EURO") && !is_currency("usd")
        );
    }

    #[test]
    fn major_units() {
        assert_eq!(format_major(125_000, "EUR"), "1250.00");
        assert_eq!(format_major(-5, "USD"), "-0.05");
        assert_eq!(format_major(0, "USD"), "0.00");
        assert_eq!(format_major(1500, "JPY"), "1500");
        assert_eq!(format_major(1_234, "KWD"), "1.234");
        assert_eq!(format_major(i64::MIN, "EUR"), "-92233720368547758.08");
    }

    proptest! {
        /// The CSV's major units, for any amount and any currency text,
        /// read back as exactly the minor units.
        #[test]
        fn major_units_are_exact_for_any_amount(minor in any::<i64>(), currency in any::<String>()) {
            let text = format_major(minor, &currency);
            let digits = minor_unit_digits(&currency) as usize;
            let (whole, frac) = text.split_once('.').unwrap_or((&text, ""));
            prop_assert_eq!(frac.len(), digits);
            let back: i128 = format!("{whole}{frac}").parse().expect("digits");
            prop_assert_eq!(back, i128::from(minor));
        }
    }
}
