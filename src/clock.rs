//! Time as the API shows it.

use crate::store::Millis;

/// Unix milliseconds as RFC 3339 (UTC, millisecond precision).
pub fn rfc3339(ms: Millis) -> String {
    #[allow(clippy::cast_sign_loss)]
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

/// An RFC 3339 timestamp (`2024-05-01T12:00:00Z`, `2024-05-01T14:00:00.5+02:00`)
/// as Unix milliseconds; `None` for anything else (or before 1970).
pub fn parse_rfc3339(text: &str) -> Option<Millis> {
    let (local, offset_minutes) = match text.strip_suffix(['Z', 'z']) {
        Some(local) => (local, 0),
        None => {
            let split = text.len().checked_sub(6)?;
            let (local, offset) = (text.get(..split)?, text.get(split..)?.as_bytes());
            let sign = match offset {
                [b'+', _, _, b':', _, _] => 1,
                [b'-', _, _, b':', _, _] => -1,
                _ => return None,
            };
            let digits = |d: &[u8]| -> Option<i64> {
                std::str::from_utf8(d)
                    .ok()?
                    .parse::<u8>()
                    .ok()
                    .map(i64::from)
            };
            let (hours, minutes) = (digits(&offset[1..3])?, digits(&offset[4..6])?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            (local, sign * (hours * 60 + minutes))
        }
    };
    let at = humantime::parse_rfc3339(&format!("{local}Z")).ok()?;
    let ms = i64::try_from(at.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis()).ok()?;
    ms.checked_sub(offset_minutes * 60_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_reads_utc_offsets_and_fractions_and_refuses_the_rest() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_rfc3339("1970-01-01T02:00:01.250+02:00"), Some(1250));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00-01:30"), Some(5_400_000));
        let now = 1_714_564_800_123;
        assert_eq!(parse_rfc3339(&rfc3339(now)), Some(now));
        for bad in [
            "",
            "yesterday",
            "2024-05-01",
            "2024-05-01T12:00:00",
            "2024-05-01T12:00:00+2:00",
            "2024-05-01T12:00:00+24:00",
            "2024-13-01T12:00:00Z",
            "2024-05-01T12:00:00Zé",
            "ééééééé",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
