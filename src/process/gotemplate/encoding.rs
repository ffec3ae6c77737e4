//! Small encoders with Go's exact behaviour: html/js/url escaping, base64,
//! base32, hex, adler32, os.ExpandEnv, net/url parsing for urlParse/urlJoin.

use std::collections::BTreeMap;

use super::func::FnResult;
use super::gostr::{self, decode_rune};
use super::strconv;
use super::unicode as uni;
use super::value::{MapT, Value};

const UPPER: &[u8; 16] = b"0123456789ABCDEF";
const LOWER: &[u8; 16] = b"0123456789abcdef";

pub(super) fn hex_encode(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len() * 2);
    for &c in b {
        out.push(LOWER[(c >> 4) as usize]);
        out.push(LOWER[(c & 0xF) as usize]);
    }
    out
}

/// template.HTMLEscapeString.
pub(super) fn html_escape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for &c in s {
        match c {
            0 => out.extend_from_slice("\u{FFFD}".as_bytes()),
            b'"' => out.extend_from_slice(b"&#34;"),
            b'\'' => out.extend_from_slice(b"&#39;"),
            b'&' => out.extend_from_slice(b"&amp;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// template.JSEscapeString.
pub(super) fn js_escape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c < 0x80 {
            match c {
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\'' => out.extend_from_slice(b"\\'"),
                b'"' => out.extend_from_slice(b"\\\""),
                b'<' => out.extend_from_slice(b"\\u003C"),
                b'>' => out.extend_from_slice(b"\\u003E"),
                b'&' => out.extend_from_slice(b"\\u0026"),
                b'=' => out.extend_from_slice(b"\\u003D"),
                c if c < b' ' => {
                    out.extend_from_slice(b"\\u00");
                    out.push(UPPER[(c >> 4) as usize]);
                    out.push(UPPER[(c & 0xF) as usize]);
                }
                c => out.push(c),
            }
            i += 1;
            continue;
        }
        let (r, w) = decode_rune(&s[i..]);
        let w = w.max(1);
        if uni::is_print(r) {
            out.extend_from_slice(&s[i..i + w]);
        } else {
            out.extend_from_slice(format!("\\u{:04X}", r as u32).as_bytes());
        }
        i += w;
    }
    out
}

fn should_escape(c: u8, mode: u8) -> bool {
    // mode: b'q' query component, b'p' path segment / path, b'f' fragment, b'u' userinfo
    if c.is_ascii_alphanumeric() {
        return false;
    }
    match c {
        b'-' | b'_' | b'.' | b'~' => false,
        b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'?' | b'@' => match mode {
            b'p' => c == b'?',
            b'u' => c == b'@' || c == b'/' || c == b'?' || c == b':',
            b'f' => false,
            _ => true,
        },
        b'!' | b'(' | b')' | b'*' if mode == b'f' => false,
        _ => true,
    }
}

fn escape(s: &[u8], mode: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for &c in s {
        if c == b' ' && mode == b'q' {
            out.push(b'+');
        } else if should_escape(c, mode) {
            out.push(b'%');
            out.push(UPPER[(c >> 4) as usize]);
            out.push(UPPER[(c & 0xF) as usize]);
        } else {
            out.push(c);
        }
    }
    out
}

/// url.QueryEscape.
pub(super) fn query_escape(s: &[u8]) -> Vec<u8> {
    escape(s, b'q')
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

pub(super) fn b64_encode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len().div_ceil(3) * 4);
    for ch in s.chunks(3) {
        let v = (ch[0] as u32) << 16
            | (*ch.get(1).unwrap_or(&0) as u32) << 8
            | *ch.get(2).unwrap_or(&0) as u32;
        out.push(B64[(v >> 18) as usize & 63]);
        out.push(B64[(v >> 12) as usize & 63]);
        out.push(if ch.len() > 1 {
            B64[(v >> 6) as usize & 63]
        } else {
            b'='
        });
        out.push(if ch.len() > 2 {
            B64[v as usize & 63]
        } else {
            b'='
        });
    }
    out
}

fn b64_val(c: u8) -> Option<u8> {
    B64.iter().position(|x| *x == c).map(|p| p as u8)
}

/// base64.StdEncoding.DecodeString; Err is Go's error text.
pub(super) fn b64_decode(src: &[u8]) -> Result<Vec<u8>, String> {
    let corrupt = |n: usize| format!("illegal base64 data at input byte {n}");
    let mut out = Vec::with_capacity(src.len() / 4 * 3);
    let mut si = 0usize;
    loop {
        let mut dbuf = [0u8; 4];
        let mut dlen = 4;
        let mut j = 0usize;
        let mut err: Option<String> = None;
        let mut done = false;
        while j < 4 {
            if si == src.len() {
                if j == 0 {
                    return Ok(out);
                }
                // padding required
                return Err(corrupt(si - j));
            }
            let c = src[si];
            si += 1;
            if let Some(v) = b64_val(c) {
                dbuf[j] = v;
                j += 1;
                continue;
            }
            if c == b'\n' || c == b'\r' {
                continue;
            }
            if c != b'=' {
                return Err(corrupt(si - 1));
            }
            match j {
                0 | 1 => return Err(corrupt(si - 1)),
                2 => {
                    while si < src.len() && (src[si] == b'\n' || src[si] == b'\r') {
                        si += 1;
                    }
                    if si == src.len() {
                        return Err(corrupt(src.len()));
                    }
                    if src[si] != b'=' {
                        return Err(corrupt(si - 1));
                    }
                    si += 1;
                }
                _ => {}
            }
            while si < src.len() && (src[si] == b'\n' || src[si] == b'\r') {
                si += 1;
            }
            if si < src.len() {
                err = Some(corrupt(si));
            }
            dlen = j;
            done = true;
            break;
        }
        let val = (dbuf[0] as u32) << 18
            | (dbuf[1] as u32) << 12
            | (dbuf[2] as u32) << 6
            | dbuf[3] as u32;
        let b = [(val >> 16) as u8, (val >> 8) as u8, val as u8];
        match dlen {
            4 => out.extend_from_slice(&b),
            3 => out.extend_from_slice(&b[..2]),
            2 => out.extend_from_slice(&b[..1]),
            _ => {}
        }
        if let Some(e) = err {
            return Err(e);
        }
        if done {
            return Ok(out);
        }
    }
}

pub(super) fn b32_encode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len().div_ceil(5) * 8);
    for ch in s.chunks(5) {
        let mut b = [0u8; 5];
        b[..ch.len()].copy_from_slice(ch);
        let v = (b[0] as u64) << 32
            | (b[1] as u64) << 24
            | (b[2] as u64) << 16
            | (b[3] as u64) << 8
            | b[4] as u64;
        let nchars = match ch.len() {
            1 => 2,
            2 => 4,
            3 => 5,
            4 => 7,
            _ => 8,
        };
        for k in 0..8 {
            if k < nchars {
                out.push(B32[((v >> (35 - 5 * k)) & 31) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
    out
}

/// base32.StdEncoding.DecodeString.
pub(super) fn b32_decode(src: &[u8]) -> Result<Vec<u8>, String> {
    let corrupt = |n: usize| format!("illegal base32 data at input byte {n}");
    let src: Vec<u8> = src
        .iter()
        .copied()
        .filter(|c| *c != b'\n' && *c != b'\r')
        .collect();
    let olen = src.len();
    let mut s: &[u8] = &src;
    let mut out = Vec::new();
    let mut end = false;
    while !s.is_empty() && !end {
        let mut dbuf = [0u8; 8];
        let mut dlen = 8;
        let mut j = 0usize;
        while j < 8 {
            if s.is_empty() {
                return Err(corrupt(olen - s.len() - j));
            }
            let c = s[0];
            s = &s[1..];
            if c == b'=' && j >= 2 && s.len() < 8 {
                if s.len() + j < 8 - 1 {
                    return Err(corrupt(olen));
                }
                for k in 0..(8 - 1 - j) {
                    if s.len() > k && s[k] != b'=' {
                        return Err(corrupt(olen - s.len() + k - 1));
                    }
                }
                dlen = j;
                end = true;
                if dlen == 1 || dlen == 3 || dlen == 6 {
                    return Err(corrupt(olen - s.len() - 1));
                }
                break;
            }
            match B32.iter().position(|x| *x == c) {
                Some(v) => dbuf[j] = v as u8,
                None => return Err(corrupt(olen - s.len() - 1)),
            }
            j += 1;
        }
        let d = dbuf;
        let mut q = [0u8; 5];
        q[4] = d[6] << 5 | d[7];
        q[3] = d[4] << 7 | d[5] << 2 | d[6] >> 3;
        q[2] = d[3] << 4 | d[4] >> 1;
        q[1] = d[1] << 6 | d[2] << 1 | d[3] >> 4;
        q[0] = d[0] << 3 | d[1] >> 2;
        let n = match dlen {
            8 => 5,
            7 => 4,
            5 => 3,
            4 => 2,
            2 => 1,
            _ => 0,
        };
        out.extend_from_slice(&q[..n]);
    }
    Ok(out)
}

pub(super) fn adler32(s: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for ch in s.chunks(5552) {
        for &x in ch {
            a += x as u32;
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    b << 16 | a
}

fn is_shell_special(c: u8) -> bool {
    matches!(c, b'*' | b'#' | b'$' | b'@' | b'!' | b'?' | b'-') || c.is_ascii_digit()
}

fn is_alnum_(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphanumeric()
}

fn get_shell_name(s: &[u8]) -> (Vec<u8>, usize) {
    if s[0] == b'{' {
        if s.len() > 2 && is_shell_special(s[1]) && s[2] == b'}' {
            return (s[1..2].to_vec(), 3);
        }
        for i in 1..s.len() {
            if s[i] == b'}' {
                if i == 1 {
                    return (Vec::new(), 2);
                }
                return (s[1..i].to_vec(), i + 1);
            }
        }
        return (Vec::new(), 1);
    }
    if is_shell_special(s[0]) {
        return (s[0..1].to_vec(), 1);
    }
    let mut i = 0;
    while i < s.len() && is_alnum_(s[i]) {
        i += 1;
    }
    (s[..i].to_vec(), i)
}

/// os.ExpandEnv.
pub(super) fn expand_env(s: &[u8]) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut i = 0;
    let mut j = 0;
    while j < s.len() {
        if s[j] == b'$' && j + 1 < s.len() {
            buf.extend_from_slice(&s[i..j]);
            let (name, w) = get_shell_name(&s[j + 1..]);
            if name.is_empty() && w > 0 {
                // invalid syntax; eat the characters
            } else if name.is_empty() {
                buf.push(s[j]);
            } else {
                let k = gostr::to_string_lossy(&name);
                if let Some(v) = std::env::var_os(k) {
                    buf.extend_from_slice(v.as_encoded_bytes());
                }
            }
            j += w;
            i = j + 1;
        }
        j += 1;
    }
    if i < s.len() {
        buf.extend_from_slice(&s[i..]);
    }
    buf
}

// ---------------- net/url (urlParse / urlJoin) ----------------

fn unhex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn unescape(s: &[u8], host: bool) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            match (
                s.get(i + 1).copied().and_then(unhex),
                s.get(i + 2).copied().and_then(unhex),
            ) {
                (Some(a), Some(b)) => {
                    out.push(a << 4 | b);
                    i += 3;
                }
                _ => {
                    let end = (i + 3).min(s.len());
                    return Err(format!(
                        "invalid URL escape {}",
                        strconv::quote_str(&s[i..end])
                    ));
                }
            }
        } else {
            let _ = host;
            out.push(s[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn valid_scheme_char(c: u8, first: bool) -> bool {
    c.is_ascii_alphabetic()
        || (!first && (c.is_ascii_digit() || c == b'+' || c == b'-' || c == b'.'))
}

/// sprig's urlParse (net/url.Parse, common cases).
pub(super) fn url_parse(raw: &[u8]) -> FnResult {
    let fail = |e: String| -> FnResult {
        Err(format!(
            "unable to parse url: parse {}: {e}",
            strconv::quote_str(raw)
        ))
    };
    if raw.iter().any(|c| *c < 0x20 || *c == 0x7f) {
        return fail("net/url: invalid control character in URL".into());
    }
    let (rest, frag) = match raw.iter().position(|c| *c == b'#') {
        Some(p) => (&raw[..p], &raw[p + 1..]),
        None => (raw, &b""[..]),
    };
    let fragment = match unescape(frag, false) {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let mut scheme: Vec<u8> = Vec::new();
    let mut rest: &[u8] = rest;
    for (i, &c) in rest.iter().enumerate() {
        if c == b':' {
            if i == 0 {
                return fail("missing protocol scheme".into());
            }
            scheme = rest[..i].to_ascii_lowercase();
            rest = &rest[i + 1..];
            break;
        }
        if !valid_scheme_char(c, i == 0) {
            break;
        }
    }
    let (rest, query) = match rest.iter().position(|c| *c == b'?') {
        Some(p) => (&rest[..p], rest[p + 1..].to_vec()),
        None => (rest, Vec::new()),
    };
    let mut opaque = Vec::new();
    let mut host = Vec::new();
    let mut userinfo = Vec::new();
    let mut path = Vec::new();
    if !rest.starts_with(b"/") && !scheme.is_empty() {
        opaque = rest.to_vec();
    } else {
        let mut r = rest;
        if (!scheme.is_empty() || !r.starts_with(b"///")) && r.starts_with(b"//") {
            let a = &r[2..];
            let end = a.iter().position(|c| *c == b'/').unwrap_or(a.len());
            let authority = &a[..end];
            r = &a[end..];
            let (ui, h) = match authority.iter().rposition(|c| *c == b'@') {
                Some(p) => (Some(&authority[..p]), &authority[p + 1..]),
                None => (None, authority),
            };
            if let Some(ui) = ui {
                match unescape(ui, false) {
                    Ok(u) => userinfo = u,
                    Err(e) => return fail(e),
                }
            }
            match unescape(h, true) {
                Ok(h) => host = h,
                Err(e) => return fail(e),
            }
        }
        match unescape(r, false) {
            Ok(p) => path = p,
            Err(e) => return fail(e),
        }
    }
    let hostname = {
        let h = &host;
        if h.starts_with(b"[") {
            match h.iter().position(|c| *c == b']') {
                Some(p) => h[1..p].to_vec(),
                None => h[1..].to_vec(),
            }
        } else {
            match h.iter().rposition(|c| *c == b':') {
                Some(p) if h[p + 1..].iter().all(|c| c.is_ascii_digit()) => h[..p].to_vec(),
                _ => h.clone(),
            }
        }
    };
    let ui_str = if userinfo.is_empty() && !raw.windows(1).any(|w| w == b"@") {
        Vec::new()
    } else {
        // Userinfo.String(): escape user and password
        match userinfo.iter().position(|c| *c == b':') {
            Some(p) => {
                let mut v = escape(&userinfo[..p], b'u');
                v.push(b':');
                v.extend_from_slice(&escape(&userinfo[p + 1..], b'u'));
                v
            }
            None => escape(&userinfo, b'u'),
        }
    };
    let mut m = BTreeMap::new();
    m.insert(b"scheme".to_vec(), Value::string(scheme));
    m.insert(b"host".to_vec(), Value::string(host));
    m.insert(b"hostname".to_vec(), Value::string(hostname));
    m.insert(b"path".to_vec(), Value::string(path));
    m.insert(b"query".to_vec(), Value::string(query));
    m.insert(b"opaque".to_vec(), Value::string(opaque));
    m.insert(b"fragment".to_vec(), Value::string(fragment));
    m.insert(b"userinfo".to_vec(), Value::string(ui_str));
    Ok(Value::map(m, MapT::Iface))
}

/// sprig's urlJoin (net/url URL.String()).
pub(super) fn url_join(d: &Value) -> FnResult {
    let Value::Map(m) = d else {
        return Err("runtime error: invalid memory address or nil pointer dereference".into());
    };
    let m = m.borrow();
    let get = |k: &str| -> Result<Vec<u8>, String> {
        match m.items.get(k.as_bytes()) {
            None => Ok(Vec::new()),
            Some(Value::Str(s)) => Ok(s.to_vec()),
            Some(v) => Err(format!(
                "unable to parse {k} key, must be of type string, but {} found",
                v.kind_name()
            )),
        }
    };
    let scheme = get("scheme")?;
    let host = get("host")?;
    let path = get("path")?;
    let query = get("query")?;
    let opaque = get("opaque")?;
    let fragment = get("fragment")?;
    let userinfo = get("userinfo")?;
    let mut buf = Vec::new();
    if !scheme.is_empty() {
        buf.extend_from_slice(&scheme);
        buf.push(b':');
    }
    if !opaque.is_empty() {
        buf.extend_from_slice(&opaque);
    } else {
        if !scheme.is_empty() || !host.is_empty() || !userinfo.is_empty() {
            if !host.is_empty() || !path.is_empty() || !userinfo.is_empty() {
                buf.extend_from_slice(b"//");
            }
            if !userinfo.is_empty() {
                buf.extend_from_slice(&userinfo);
                buf.push(b'@');
            }
            buf.extend_from_slice(&escape(&host, b'h'));
        }
        if !path.is_empty() && path[0] != b'/' && !host.is_empty() {
            buf.push(b'/');
        }
        if buf.is_empty()
            && let Some(i) = path.iter().position(|c| *c == b':')
            && !path[..i].contains(&b'/')
        {
            buf.extend_from_slice(b"./");
        }
        buf.extend_from_slice(&escape(&path, b'p'));
    }
    if !query.is_empty() {
        buf.push(b'?');
        buf.extend_from_slice(&query);
    }
    if !fragment.is_empty() {
        buf.push(b'#');
        buf.extend_from_slice(&escape(&fragment, b'f'));
    }
    Ok(Value::string(buf))
}
