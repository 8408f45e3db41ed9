//! The zone of timestamps written without one. HAProxy's `[06/Feb/2009:12:14:14.655]` is the
//! gateway's local time: read as UTC, a gateway in New York looked five hours old and every
//! line fell outside the windows. Such times are read in the system zone, or `--log-tz`.

use jiff::tz::{Offset, TimeZone};

#[derive(Debug, Clone)]
pub struct LogZone {
    zone: TimeZone,
    name: String,
    /// The offset of the last local hour converted: a log's lines share their hour.
    cached: Option<(i64, i64)>,
}

impl Default for LogZone {
    fn default() -> LogZone {
        LogZone::system()
    }
}

impl PartialEq for LogZone {
    fn eq(&self, other: &LogZone) -> bool {
        self.name == other.name
    }
}

impl LogZone {
    /// The machine's zone (`TZ`, else /etc/localtime), as the gateway beside it writes.
    pub fn system() -> LogZone {
        let zone = TimeZone::try_system().unwrap_or(TimeZone::UTC);
        let name = zone.iana_name().unwrap_or("local").to_string();
        LogZone { zone, name, cached: None }
    }

    /// `UTC`, `local`, an offset (`+05:30`, `-0500`) or an IANA name (`America/New_York`).
    pub fn parse(text: &str) -> Result<LogZone, String> {
        let text = text.trim();
        let zone = match text {
            "local" => return Ok(LogZone::system()),
            "UTC" | "utc" | "Z" => TimeZone::UTC,
            t if t.starts_with(['+', '-']) => {
                let seconds = parse_offset(t).ok_or_else(|| format!("bad offset {t:?} (try +05:30 or -0500)"))?;
                TimeZone::fixed(Offset::from_seconds(seconds).map_err(|e| format!("offset {t:?}: {e}"))?)
            }
            name => TimeZone::get(name).map_err(|_| {
                format!("unknown time zone {name:?}: use UTC, local, an offset such as -05:00, or a name such as America/New_York")
            })?,
        };
        Ok(LogZone { zone, name: text.to_string(), cached: None })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Unix seconds of `local`, a wall-clock time in this zone written as if it were UTC.
    pub fn to_utc(&mut self, local: i64) -> i64 {
        let hour = local.div_euclid(3600);
        let offset = match self.cached {
            Some((h, offset)) if h == hour => offset,
            _ => {
                let offset = self.offset_at(hour * 3600);
                self.cached = Some((hour, offset));
                offset
            }
        };
        local - offset
    }

    /// Seconds east of UTC at the local time `local` (an hour skipped or repeated by a clock
    /// change reads as the offset before it, as most tools do).
    fn offset_at(&self, local: i64) -> i64 {
        let Ok(as_utc) = jiff::Timestamp::from_second(local) else { return 0 };
        let civil = as_utc.to_zoned(TimeZone::UTC).datetime();
        match self.zone.to_ambiguous_timestamp(civil).compatible() {
            Ok(instant) => local - instant.as_second(),
            Err(_) => 0,
        }
    }
}

/// `+05:30`, `-0500`, `+5` → seconds.
fn parse_offset(t: &str) -> Option<i32> {
    let sign = if t.starts_with('-') { -1 } else { 1 };
    let digits: String = t[1..].chars().filter(|c| *c != ':').collect();
    if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m) = match digits.len() {
        1 | 2 => (digits.parse::<i32>().ok()?, 0),
        3 => (digits[..1].parse::<i32>().ok()?, digits[1..].parse::<i32>().ok()?),
        _ => (digits[..2].parse::<i32>().ok()?, digits[2..].parse::<i32>().ok()?),
    };
    (h <= 25 && m < 60).then_some(sign * (h * 3600 + m * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_times_become_instants_in_their_zone() {
        // 2024-07-01 12:00 in New York is 16:00 UTC (EDT); 2024-01-15 12:00 is 17:00 UTC (EST).
        let mut ny = LogZone::parse("America/New_York").unwrap();
        assert_eq!(ny.to_utc(1_719_835_200), 1_719_835_200 + 4 * 3600);
        assert_eq!(ny.to_utc(1_705_320_000), 1_705_320_000 + 5 * 3600);
        let mut fixed = LogZone::parse("+05:30").unwrap();
        assert_eq!(fixed.to_utc(1_000_000), 1_000_000 - 5 * 3600 - 1800);
        assert_eq!(LogZone::parse("-0500").unwrap().to_utc(0), 5 * 3600);
        assert_eq!(LogZone::parse("UTC").unwrap().to_utc(42), 42);
        assert!(LogZone::parse("Mars/Olympus").unwrap_err().contains("unknown time zone"));
        assert!(LogZone::parse("+99:00").is_err());
    }
}
