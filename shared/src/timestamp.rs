//! RFC 3339 timestamps. Pixlpay sends second precision in REST (`2025-01-15T10:30:00Z`) and microseconds in webhooks
//! (`2025-01-20T14:30:00.000000Z`); both, and any offset, parse to the same UTC instant.

use time::{OffsetDateTime, UtcOffset, format_description::well_known::Rfc3339};

/// Parses an RFC 3339 timestamp and normalises it to UTC.
pub fn parse(text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text.trim(), &Rfc3339)
        .map(|t| t.to_offset(UtcOffset::UTC))
        .map_err(|e| format!("is not an RFC 3339 timestamp ({e}): {text:?}"))
}

/// Formats as RFC 3339 in UTC (`Z`), with fraction digits only when the instant has them.
pub fn format(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(&Rfc3339)
        .expect("every UTC instant in range formats as RFC 3339")
}

pub mod required {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let text = String::deserialize(d)?;
        super::parse(&text).map_err(serde::de::Error::custom)
    }
}

pub mod option {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    pub fn serialize<S: Serializer>(t: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&super::format(*t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<OffsetDateTime>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| super::parse(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_to_six_fraction_digits_and_offsets_parse() {
        let base = parse("2025-01-20T14:30:00Z").unwrap();
        for text in [
            "2025-01-20T14:30:00.0Z",
            "2025-01-20T14:30:00.000000Z",
            "2025-01-20T16:30:00+02:00",
        ] {
            assert_eq!(parse(text).unwrap(), base, "{text}");
        }
        assert_eq!(parse("2025-01-20T14:30:00.5Z").unwrap().millisecond(), 500);
        assert_eq!(format(base), "2025-01-20T14:30:00Z");
    }

    #[test]
    fn non_rfc3339_is_refused() {
        for text in [
            "",
            "2025-01-20",
            "2025-01-20 14:30:00",
            "2025-01-20T14:30:00",
            "1737383400",
            "tomorrow",
        ] {
            assert!(parse(text).is_err(), "{text:?} parsed");
        }
    }
}
