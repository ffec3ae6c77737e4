//! `geoip`: looks the IP address in the field `source` up in a MaxMind
//! database (`db`, read through the pipeline's [`Loader`]) and sets labels:
//! `db_type: city` sets `geoip_city_name`, `geoip_country_name`,
//! `geoip_continent_name`, `geoip_continent_code`,
//! `geoip_location_latitude`/`_longitude`, `geoip_postal_code`,
//! `geoip_timezone`, `geoip_subdivision_name`, `geoip_subdivision_code`
//! (the most specific subdivision); `db_type: asn` sets
//! `geoip_autonomous_system_number` and
//! `geoip_autonomous_system_organization`. Empty values set no label.
//!
//! As Grafana's (geoip2-golang v2): an address is parsed as Go's
//! `net.ParseIP` and looked up in its 16-byte form, so an IPv4 address is
//! looked up as `::ffff:a.b.c.d` (MaxMind's own databases map that range
//! to their IPv4 data; an IPv4-only database finds nothing); the database
//! type must be one geoip2-golang knows, and a lookup that fails or whose
//! record does not decode sets nothing.
//!
//! Refused here though Grafana's driver takes them and then does nothing
//! for every line: a `db_type` other than `city` and `asn` (`country`
//! included), no `source`, and a `db_type` the database cannot answer
//! (`city` on an ASN database, ...).

use std::net::IpAddr;
use std::sync::Arc;

use maxminddb::Reader;
use serde::Deserialize;

use super::super::fields::Fields;
use super::super::yaml::Node;
use super::super::{EachEntry, Entry, Loader};

/// Largest database read (MaxMind's largest, Enterprise, is far smaller).
const MAX_DB_BYTES: u64 = 1 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DbType {
    City,
    Asn,
}

/// The database bytes, shared by every container's copy of the stage.
#[derive(Debug)]
struct Bytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

#[derive(Debug, Clone)]
pub struct GeoIp {
    reader: Arc<Reader<Bytes>>,
    source: String,
    db_type: DbType,
}

impl GeoIp {
    pub fn new(config: &Node, loader: &dyn Loader) -> Result<GeoIp, String> {
        let mut f = Fields::new(config)?;
        let db = f.string("db")?.unwrap_or_default();
        let source = f.string("source")?;
        let db_type = f.string("db_type")?.unwrap_or_default();
        f.finish()?;
        if config.is_null() {
            return Err("geoip stage config cannot be empty".into());
        }
        if db.is_empty() {
            return Err("db path cannot be empty".into());
        }
        let source = match source {
            Some(s) if s.is_empty() => return Err("source cannot be empty".into()),
            Some(s) => s,
            None => {
                return Err(
                    "source is required: without it Grafana's geoip stage looks no address up"
                        .into(),
                );
            }
        };
        let db_type = match db_type.as_str() {
            "" => return Err("db type should be either city or asn".into()),
            "city" => DbType::City,
            "asn" => DbType::Asn,
            other => {
                return Err(format!(
                    "db_type {other:?} is not supported: it must be city or asn (Grafana's driver accepts any other value and then looks nothing up)"
                ));
            }
        };
        let bytes = loader.read(&db, MAX_DB_BYTES)?;
        let reader = Reader::from_source(Bytes(bytes))
            .map_err(|e| format!("cannot open the MaxMind database {db:?}: {e}"))?;
        let kind = reader.metadata().database_type.clone();
        let (city, asn) = answers(&kind)
            .ok_or_else(|| format!("geoip2: reader does not support the {kind:?} database type"))?;
        let ok = match db_type {
            DbType::City => city,
            DbType::Asn => asn,
        };
        if !ok {
            let method = if db_type == DbType::City {
                "City"
            } else {
                "ASN"
            };
            return Err(format!(
                "db_type {}: geoip2: the {method} method does not support the {kind} database",
                if db_type == DbType::City {
                    "city"
                } else {
                    "asn"
                }
            ));
        }
        Ok(GeoIp {
            reader: Arc::new(reader),
            source,
            db_type,
        })
    }

    fn city(&self, address: IpAddr, entry: &mut Entry) {
        let Ok(found) = self.reader.lookup(address) else {
            return;
        };
        let Ok(Some(record)) = found.decode::<City>() else {
            return;
        };
        let mut set = |name: &str, value: Option<String>| {
            if let Some(value) = value.filter(|v| !v.is_empty()) {
                entry.set_label(name, &value);
            }
        };
        set("geoip_city_name", record.city.names.en);
        set("geoip_country_name", record.country.names.en);
        set("geoip_continent_name", record.continent.names.en);
        set("geoip_continent_code", record.continent.code);
        if let (Some(lat), Some(lon)) = (record.location.latitude, record.location.longitude) {
            set("geoip_location_latitude", Some(go_sprint_float(lat)));
            set("geoip_location_longitude", Some(go_sprint_float(lon)));
        }
        set("geoip_postal_code", record.postal.code);
        set("geoip_timezone", record.location.time_zone);
        if let Some(last) = record.subdivisions.into_iter().last() {
            set("geoip_subdivision_name", last.names.en);
            set("geoip_subdivision_code", last.iso_code);
        }
    }

    fn asn(&self, address: IpAddr, entry: &mut Entry) {
        let Ok(found) = self.reader.lookup(address) else {
            return;
        };
        let Ok(Some(record)) = found.decode::<Asn>() else {
            return;
        };
        if let Some(number) = record.autonomous_system_number.filter(|n| *n != 0) {
            entry.set_label("geoip_autonomous_system_number", &number.to_string());
        }
        if let Some(org) = record
            .autonomous_system_organization
            .filter(|o| !o.is_empty())
        {
            entry.set_label("geoip_autonomous_system_organization", &org);
        }
    }
}

/// Which lookups geoip2-golang v2 allows on a database type: (City, ASN);
/// `None` for a type it refuses to open.
fn answers(database_type: &str) -> Option<(bool, bool)> {
    Some(match database_type {
        "GeoIP2-Anonymous-IP" | "GeoIP2-Connection-Type" | "GeoIP2-Domain" => (false, false),
        "DBIP-ASN-Lite (compat=GeoLite2-ASN)" | "GeoLite2-ASN" => (false, true),
        "GeoIP2-ISP" | "GeoIP2-Precision-ISP" => (false, true),
        "DBIP-City-Lite"
        | "DBIP-Country-Lite"
        | "DBIP-Country"
        | "DBIP-Location (compat=City)"
        | "GeoLite2-City"
        | "GeoIP2-City"
        | "GeoIP2-City-Africa"
        | "GeoIP2-City-Asia-Pacific"
        | "GeoIP2-City-Europe"
        | "GeoIP2-City-North-America"
        | "GeoIP2-City-South-America"
        | "GeoIP2-Precision-City"
        | "GeoLite2-Country"
        | "GeoIP2-Country"
        | "DBIP-ISP (compat=Enterprise)"
        | "DBIP-Location-ISP (compat=Enterprise)"
        | "GeoIP2-Enterprise" => (true, false),
        _ => return None,
    })
}

/// Go's `fmt.Sprint(float64)`: `%g` with the shortest digits, an exponent
/// below 1e-4 and from 1e6.
pub fn go_sprint_float(f: f64) -> String {
    if !f.is_finite() {
        return super::super::entry::format_float(f);
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        return format!("{f}");
    }
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

impl EachEntry for GeoIp {
    const NAME: &'static str = "geoip";

    fn apply(&self, entry: &mut Entry) {
        let Some(value) = entry.extracted.get_string(&self.source) else {
            return;
        };
        // net.ParseIP, then its 16-byte form.
        let address = match value.parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) => IpAddr::V6(v4.to_ipv6_mapped()),
            Ok(v6) => v6,
            Err(_) => return,
        };
        match self.db_type {
            DbType::City => self.city(address, entry),
            DbType::Asn => self.asn(address, entry),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Names {
    en: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Named {
    names: Names,
    code: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Location {
    #[serde(deserialize_with = "float")]
    latitude: Option<f64>,
    #[serde(deserialize_with = "float")]
    longitude: Option<f64>,
    time_zone: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Subdivision {
    names: Names,
    iso_code: Option<String>,
}

/// The part of a City record the stage reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct City {
    city: Named,
    country: Named,
    continent: Named,
    postal: Named,
    location: Location,
    subdivisions: Vec<Subdivision>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Asn {
    #[serde(deserialize_with = "unsigned")]
    autonomous_system_number: Option<u64>,
    autonomous_system_organization: Option<String>,
}

/// A Go `uint` field: any unsigned MaxMind type up to 64 bits.
fn unsigned<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    struct Unsigned;
    impl serde::de::Visitor<'_> for Unsigned {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an unsigned integer")
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Option<u64>, E> {
            Ok(Some(v))
        }
    }
    d.deserialize_any(Unsigned)
}

/// A Go `*float64` field: a MaxMind double or float.
fn float<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    struct Float;
    impl serde::de::Visitor<'_> for Float {
        type Value = Option<f64>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a floating-point number")
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Option<f64>, E> {
            Ok(Some(v))
        }
    }
    d.deserialize_any(Float)
}

#[cfg(test)]
pub(crate) mod mmdb {
    //! A minimal MaxMind DB writer for tests: an IPv6 (or IPv4) search
    //! tree with 24-bit records over a few networks, and their records.

    /// A value of the MaxMind DB data section.
    pub enum V {
        S(&'static str),
        D(f64),
        U(u32),
        U16(u16),
        U64(u64),
        M(Vec<(&'static str, V)>),
        A(Vec<V>),
    }

    fn control(out: &mut Vec<u8>, kind: u8, size: usize) {
        let (base, extended) = if kind > 7 {
            (0, Some(kind - 7))
        } else {
            (kind << 5, None)
        };
        let (first, extra): (u8, Vec<u8>) = if size < 29 {
            (size as u8, vec![])
        } else if size < 285 {
            (29, vec![(size - 29) as u8])
        } else {
            (30, ((size - 285) as u16).to_be_bytes().to_vec())
        };
        out.push(base | first);
        if let Some(e) = extended {
            out.push(e);
        }
        out.extend(extra);
    }

    pub fn encode(out: &mut Vec<u8>, v: &V) {
        match v {
            V::S(s) => {
                control(out, 2, s.len());
                out.extend(s.as_bytes());
            }
            V::D(d) => {
                control(out, 3, 8);
                out.extend(d.to_be_bytes());
            }
            V::U(u) => {
                let bytes = u.to_be_bytes();
                let skip = bytes.iter().take_while(|b| **b == 0).count();
                control(out, 6, 4 - skip);
                out.extend(&bytes[skip..]);
            }
            V::U16(u) => {
                control(out, 5, 2);
                out.extend(u.to_be_bytes());
            }
            V::U64(u) => {
                control(out, 9, 8);
                out.extend(u.to_be_bytes());
            }
            V::M(pairs) => {
                control(out, 7, pairs.len());
                for (k, v) in pairs {
                    encode(out, &V::S(k));
                    encode(out, v);
                }
            }
            V::A(items) => {
                control(out, 11, items.len());
                for item in items {
                    encode(out, item);
                }
            }
        }
    }

    /// A database of `database_type` whose `networks` (address bits,
    /// prefix length) lead to `records`.
    pub fn build(
        database_type: &'static str,
        ip_version: u16,
        networks: &[(u128, u32, V)],
    ) -> Vec<u8> {
        let bits = if ip_version == 6 { 128 } else { 32 };
        // Nodes: [left, right]; None = empty; Some(Err(data)) = data.
        let mut nodes: Vec<[Option<Result<usize, usize>>; 2]> = vec![[None, None]];
        let mut data = Vec::new();
        for (address, prefix, record) in networks {
            let offset = data.len();
            encode(&mut data, record);
            let mut node = 0;
            for depth in 0..*prefix {
                let bit = ((address >> (bits - 1 - depth)) & 1) as usize;
                if depth + 1 == *prefix {
                    nodes[node][bit] = Some(Err(offset));
                } else {
                    node = match nodes[node][bit] {
                        Some(Ok(next)) => next,
                        _ => {
                            nodes.push([None, None]);
                            let next = nodes.len() - 1;
                            nodes[node][bit] = Some(Ok(next));
                            next
                        }
                    };
                }
            }
        }
        let count = nodes.len();
        let mut out = Vec::new();
        for node in &nodes {
            for record in node {
                let value = match record {
                    None => count,
                    Some(Ok(next)) => *next,
                    Some(Err(offset)) => count + 16 + offset,
                };
                out.extend(&(value as u32).to_be_bytes()[1..]);
            }
        }
        out.extend([0u8; 16]);
        out.extend(data);
        out.extend(b"\xAB\xCD\xEFMaxMind.com");
        let u16v = V::U16;
        encode(
            &mut out,
            &V::M(vec![
                ("binary_format_major_version", u16v(2)),
                ("binary_format_minor_version", u16v(0)),
                ("build_epoch", V::U64(1_700_000_000)),
                ("database_type", V::S(database_type)),
                ("description", V::M(vec![("en", V::S("test"))])),
                ("ip_version", u16v(ip_version)),
                ("languages", V::A(vec![V::S("en")])),
                ("node_count", V::U(count as u32)),
                ("record_size", u16v(24)),
            ]),
        );
        out
    }

    /// `a.b.c.d` as an IPv4-mapped IPv6 address.
    pub fn mapped(v4: [u8; 4]) -> u128 {
        (0xffffu128 << 32) | u128::from(u32::from_be_bytes(v4))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::super::super::testing::{entry, label};
    use super::super::super::{Context, Loader, Pipeline};
    use super::go_sprint_float;
    use super::mmdb::{V, build, mapped};

    #[derive(Debug)]
    struct Files(BTreeMap<&'static str, Vec<u8>>);

    impl Loader for Files {
        fn read(&self, path: &str, _max_bytes: u64) -> Result<Arc<Vec<u8>>, String> {
            self.0
                .get(path)
                .map(|b| Arc::new(b.clone()))
                .ok_or_else(|| format!("no file {path}"))
        }
    }

    fn names(en: &'static str) -> V {
        V::M(vec![("en", V::S(en)), ("de", V::S("x"))])
    }

    pub(super) fn city_db() -> Vec<u8> {
        let record = V::M(vec![
            ("city", V::M(vec![("names", names("Kansas City"))])),
            (
                "country",
                V::M(vec![
                    ("names", names("United States")),
                    ("iso_code", V::S("US")),
                ]),
            ),
            (
                "continent",
                V::M(vec![
                    ("names", names("North America")),
                    ("code", V::S("NA")),
                ]),
            ),
            (
                "location",
                V::M(vec![
                    ("latitude", V::D(39.1027)),
                    ("longitude", V::D(-94.5778)),
                    ("time_zone", V::S("America/Chicago")),
                ]),
            ),
            ("postal", V::M(vec![("code", V::S("64184"))])),
            (
                "subdivisions",
                V::A(vec![
                    V::M(vec![("names", names("Missouri")), ("iso_code", V::S("MO"))]),
                    V::M(vec![("names", names("Jackson")), ("iso_code", V::S("JA"))]),
                ]),
            ),
        ]);
        let sparse = V::M(vec![("country", V::M(vec![("names", names(""))]))]);
        build(
            "GeoIP2-City",
            6,
            &[
                (mapped([34, 120, 0, 0]), 112, record),
                (mapped([10, 0, 0, 0]), 104, sparse),
                (
                    0x2001_0db8u128 << 96,
                    32,
                    V::M(vec![("city", V::M(vec![("names", names("Six"))]))]),
                ),
            ],
        )
    }

    pub(super) fn asn_db() -> Vec<u8> {
        build(
            "GeoLite2-ASN",
            6,
            &[(
                mapped([34, 120, 0, 0]),
                112,
                V::M(vec![
                    ("autonomous_system_number", V::U(396982)),
                    (
                        "autonomous_system_organization",
                        V::S("GOOGLE-CLOUD-PLATFORM"),
                    ),
                ]),
            )],
        )
    }

    fn files() -> Files {
        Files(BTreeMap::from([
            ("/city.mmdb", city_db()),
            ("/asn.mmdb", asn_db()),
            (
                "/v4.mmdb",
                build(
                    "GeoIP2-City",
                    4,
                    &[(
                        34u128 << 24,
                        8,
                        V::M(vec![("city", V::M(vec![("names", names("Four"))]))]),
                    )],
                ),
            ),
            ("/odd.mmdb", build("Acme-Odd", 6, &[])),
            ("/junk.mmdb", b"not a database".to_vec()),
        ]))
    }

    fn run(yaml: &str, lines: &[&str]) -> Vec<super::super::super::Entry> {
        let mut p = Pipeline::parse_inline(yaml, &files()).unwrap().fresh();
        let mut e: Vec<_> = lines.iter().map(|l| entry(l)).collect();
        p.run(&mut e, &mut Context::new(0));
        e
    }

    const RE: &str = r#"{"regex":{"expression":"^(?P<ip>\\S+)"}}"#;

    #[test]
    fn city_labels() {
        let out = run(
            &format!(r#"[{RE},{{"geoip":{{"db":"/city.mmdb","source":"ip","db_type":"city"}}}}]"#),
            &[
                "34.120.177.193 GET /",
                "10.1.2.3 x",
                "2001:db8::1 x",
                "192.0.2.1 x",
                "nonsense x",
                "::ffff:34.120.1.1 x",
            ],
        );
        let e = &out[0];
        for (name, value) in [
            ("geoip_city_name", "Kansas City"),
            ("geoip_country_name", "United States"),
            ("geoip_continent_name", "North America"),
            ("geoip_continent_code", "NA"),
            ("geoip_location_latitude", "39.1027"),
            ("geoip_location_longitude", "-94.5778"),
            ("geoip_postal_code", "64184"),
            ("geoip_timezone", "America/Chicago"),
            ("geoip_subdivision_name", "Jackson"),
            ("geoip_subdivision_code", "JA"),
        ] {
            assert_eq!(label(e, name), Some(value), "{name}");
        }
        assert_eq!(out[1].labels.len(), 2, "an empty name sets no label");
        assert_eq!(label(&out[2], "geoip_city_name"), Some("Six"));
        assert_eq!(out[3].labels.len(), 2, "not in the database");
        assert_eq!(out[4].labels.len(), 2, "not an address");
        assert_eq!(label(&out[5], "geoip_city_name"), Some("Kansas City"));
    }

    #[test]
    fn asn_labels_and_ipv4_databases() {
        let out = run(
            &format!(r#"[{RE},{{"geoip":{{"db":"/asn.mmdb","source":"ip","db_type":"asn"}}}}]"#),
            &["34.120.177.193 GET /"],
        );
        assert_eq!(
            label(&out[0], "geoip_autonomous_system_number"),
            Some("396982")
        );
        assert_eq!(
            label(&out[0], "geoip_autonomous_system_organization"),
            Some("GOOGLE-CLOUD-PLATFORM")
        );
        // Grafana looks IPv4 up as ::ffff:a.b.c.d: nothing in an IPv4 database.
        let out = run(
            &format!(r#"[{RE},{{"geoip":{{"db":"/v4.mmdb","source":"ip","db_type":"city"}}}}]"#),
            &["34.1.2.3 x"],
        );
        assert_eq!(out[0].labels.len(), 2);
    }

    #[test]
    fn configs() {
        let refused = |yaml: &str| Pipeline::parse_inline(yaml, &files()).unwrap_err();
        assert!(refused("[{geoip: }]").contains("cannot be empty"));
        assert!(
            refused("[{geoip: {source: ip, db_type: city}}]").contains("db path cannot be empty")
        );
        assert!(
            refused("[{geoip: {db: /city.mmdb, source: '', db_type: city}}]")
                .contains("source cannot be empty")
        );
        assert!(
            refused("[{geoip: {db: /city.mmdb, db_type: city}}]").contains("source is required")
        );
        assert!(
            refused("[{geoip: {db: /city.mmdb, source: ip}}]")
                .contains("db type should be either city or asn")
        );
        assert!(
            refused("[{geoip: {db: /city.mmdb, source: ip, db_type: country}}]")
                .contains("must be city or asn")
        );
        assert!(
            refused("[{geoip: {db: /asn.mmdb, source: ip, db_type: city}}]")
                .contains("does not support the GeoLite2-ASN database")
        );
        assert!(
            refused("[{geoip: {db: /city.mmdb, source: ip, db_type: asn}}]").contains("ASN method")
        );
        assert!(
            refused("[{geoip: {db: /odd.mmdb, source: ip, db_type: city}}]")
                .contains("does not support the \"Acme-Odd\" database type")
        );
        assert!(
            refused("[{geoip: {db: /junk.mmdb, source: ip, db_type: city}}]")
                .contains("cannot open")
        );
        assert!(
            refused("[{geoip: {db: /nope.mmdb, source: ip, db_type: city}}]").contains("no file")
        );
        assert!(
            refused("[{geoip: {db: /city.mmdb, source: ip, db_type: city, x: 1}}]")
                .contains("unknown setting")
        );
    }

    #[test]
    fn floats_as_go_prints_them() {
        assert_eq!(go_sprint_float(39.1027), "39.1027");
        assert_eq!(go_sprint_float(-94.5778), "-94.5778");
        assert_eq!(go_sprint_float(0.0), "0");
        assert_eq!(go_sprint_float(0.00001), "1e-05");
        assert_eq!(go_sprint_float(0.0001), "0.0001");
        assert_eq!(go_sprint_float(1e21), "1e+21");
        assert_eq!(go_sprint_float(123456.0), "123456");
        assert_eq!(go_sprint_float(1234567.5), "1.2345675e+06");
        assert_eq!(go_sprint_float(123456789.0), "1.23456789e+08");
    }
}
