//! A small DER reader: just what certificates, SCT lists and RFC 3161 timestamps need
//! (walking TLVs, integers, object identifiers, times). It never allocates copies of what
//! it reads and refuses indefinite lengths, which DER forbids.

pub const SEQUENCE: u8 = 0x30;
pub const SET: u8 = 0x31;
pub const OCTET_STRING: u8 = 0x04;
pub const BIT_STRING: u8 = 0x03;
pub const OID: u8 = 0x06;
pub const INTEGER: u8 = 0x02;
pub const UTC_TIME: u8 = 0x17;
pub const GENERALIZED_TIME: u8 = 0x18;

/// One TLV: its tag, its content, and the whole encoding (tag and length included).
#[derive(Debug, Clone, Copy)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    pub raw: &'a [u8],
}

/// Reads TLVs one after another from a buffer.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    #[must_use]
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next TLV, whatever its tag.
    pub fn any(&mut self) -> Result<Tlv<'a>, String> {
        let bytes = self.rest;
        let (&tag, after) = bytes
            .split_first()
            .ok_or("the DER ends where another element was expected")?;
        if tag & 0x1f == 0x1f {
            return Err("a DER element uses a multi-byte tag, which nothing here expects".into());
        }
        let (&first, mut after) = after.split_first().ok_or("a DER length is missing")?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || after.len() < n {
                return Err("a DER length is malformed".into());
            }
            let mut len = 0usize;
            for &b in &after[..n] {
                len = (len << 8) | usize::from(b);
            }
            after = &after[n..];
            len
        };
        if after.len() < len {
            return Err("a DER element is longer than the bytes that hold it".into());
        }
        let header = bytes.len() - after.len();
        self.rest = &after[len..];
        Ok(Tlv {
            tag,
            content: &after[..len],
            raw: &bytes[..header + len],
        })
    }

    /// The next TLV, which must carry `tag`.
    pub fn expect(&mut self, tag: u8, what: &str) -> Result<Tlv<'a>, String> {
        let t = self.any()?;
        if t.tag == tag {
            Ok(t)
        } else {
            Err(format!(
                "{what} was expected (DER tag {tag:#04x}), found tag {:#04x}",
                t.tag
            ))
        }
    }

    /// The next TLV if it carries `tag`; nothing is consumed otherwise.
    pub fn optional(&mut self, tag: u8) -> Result<Option<Tlv<'a>>, String> {
        if self.rest.first() == Some(&tag) {
            self.any().map(Some)
        } else {
            Ok(None)
        }
    }

    /// The contents of the next SEQUENCE, as a reader.
    pub fn sequence(&mut self, what: &str) -> Result<Reader<'a>, String> {
        Ok(Reader::new(self.expect(SEQUENCE, what)?.content))
    }
}

/// Reads one whole SEQUENCE from `bytes` (nothing may follow it).
pub fn sequence<'a>(bytes: &'a [u8], what: &str) -> Result<Reader<'a>, String> {
    let mut r = Reader::new(bytes);
    let s = r.sequence(what)?;
    if !r.is_empty() {
        return Err(format!("{what} is followed by stray bytes"));
    }
    Ok(s)
}

/// The DER encoding of an object identifier's content, from its dotted form.
#[must_use]
pub fn oid(dotted: &str) -> Vec<u8> {
    let arcs: Vec<u64> = dotted.split('.').filter_map(|a| a.parse().ok()).collect();
    let mut out = Vec::new();
    let mut push = |mut v: u64| {
        let mut stack = vec![u8::try_from(v & 0x7f).unwrap_or(0)];
        v >>= 7;
        while v > 0 {
            stack.push(u8::try_from(v & 0x7f).unwrap_or(0) | 0x80);
            v >>= 7;
        }
        out.extend(stack.iter().rev());
    };
    if arcs.len() >= 2 {
        push(arcs[0] * 40 + arcs[1]);
        for &a in &arcs[2..] {
            push(a);
        }
    }
    out
}

/// A DER header (tag and definite length) for `len` content bytes.
#[must_use]
pub fn header(tag: u8, len: usize) -> Vec<u8> {
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(u8::try_from(len).unwrap_or(0));
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | u8::try_from(bytes.len() - skip).unwrap_or(0));
        out.extend_from_slice(&bytes[skip..]);
    }
    out
}

/// Unix seconds of an `UTCTime` or `GeneralizedTime` (fractions of a second dropped).
pub fn time(t: &Tlv<'_>) -> Result<i64, String> {
    let s = std::str::from_utf8(t.content).map_err(|_| "a DER time is not ASCII".to_owned())?;
    let s = s
        .strip_suffix('Z')
        .ok_or_else(|| format!("the DER time {s:?} is not in UTC (no trailing Z)"))?;
    let (year, rest) = match t.tag {
        UTC_TIME => {
            let yy: i64 = num(s.get(..2))?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &s[2..])
        }
        GENERALIZED_TIME => (num(s.get(..4))?, &s[4..]),
        other => return Err(format!("DER tag {other:#04x} is not a time")),
    };
    let rest = rest.split('.').next().unwrap_or(rest);
    if rest.len() != 10 {
        return Err(format!("the DER time {s:?} is not to the second"));
    }
    let month = num(rest.get(0..2))?;
    let day = num(rest.get(2..4))?;
    let hour: i64 = num(rest.get(4..6))?;
    let minute: i64 = num(rest.get(6..8))?;
    let second: i64 = num(rest.get(8..10))?;
    Ok(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

fn num(s: Option<&str>) -> Result<i64, String> {
    s.and_then(|s| s.parse().ok())
        .ok_or_else(|| "a DER time has a field that is not a number".to_owned())
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_oids_are_read_as_written() {
        let utc = Tlv {
            tag: UTC_TIME,
            content: b"230712155635Z",
            raw: &[],
        };
        assert_eq!(time(&utc).unwrap(), 1_689_177_395);
        let gen_time = Tlv {
            tag: GENERALIZED_TIME,
            content: b"20250612120220.123Z",
            raw: &[],
        };
        assert_eq!(time(&gen_time).unwrap(), 1_749_729_740);
        assert_eq!(
            oid("1.2.840.10045.4.3.2"),
            [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]
        );
        assert_eq!(header(0x30, 300), [0x30, 0x82, 0x01, 0x2c]);
    }
}
