//! Values, records and file facts as text and as JSON.

use serde_json::{json, Map, Value as Json};

use crate::model::{
    ArrayValue, FieldInfo, FieldSample, FileInfo, Record, Scalar, Value, WriterState,
};
use crate::users;

/// Array elements shown in a summary.
pub const FIRST_VALUES: usize = 8;

/// A float in at most 6 significant digits (scientific outside 1e-4..1e15).
pub fn short_float(x: f64) -> String {
    if !x.is_finite() {
        return nonfinite(x).to_string();
    }
    if x == 0.0 {
        return "0".to_string();
    }
    let a = x.abs();
    if (1e-4..1e15).contains(&a) {
        let digits = (5 - a.log10().floor() as i32).max(0) as usize;
        let s = format!("{x:.digits$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    } else {
        format!("{x:.5e}")
    }
}

fn nonfinite(x: f64) -> &'static str {
    if x.is_nan() {
        "nan"
    } else if x > 0.0 {
        "inf"
    } else {
        "-inf"
    }
}

/// A scalar as JSON: numbers stay numbers (an f32 as the shortest decimal that reads
/// back to it); NaN and infinities, which JSON lacks, become the strings "nan", "inf",
/// "-inf".
pub fn scalar_json(s: Scalar) -> Json {
    let float = |x: f64, text: String| {
        if x.is_finite() {
            // `text` is the shortest decimal of the value in its own precision.
            text.parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or(Json::Null, Json::Number)
        } else {
            Json::String(nonfinite(x).to_string())
        }
    };
    match s {
        Scalar::Bool(b) => json!(b),
        Scalar::Int(i) => json!(i),
        Scalar::UInt(u) => json!(u),
        Scalar::F32(x) => float(x as f64, x.to_string()),
        Scalar::F64(x) => float(x, x.to_string()),
    }
}

/// `s` with control characters escaped (`\n`, `\u{1b}`): names and messages come from
/// segments and file names, which anyone may fill with terminal escape sequences.
pub fn clean(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A string quoted and escaped like a Rust string literal.
pub fn quote(s: &str) -> String {
    format!("{s:?}")
}

fn dims(d: &[usize]) -> String {
    format!("[{}]", crate::model::join(d, ","))
}

/// Elements nested by `shape` (C order) as text: `[[1, 2], [3, 4]]`, rows of 2-D and
/// deeper arrays on lines of their own.
fn nested_text(elems: &[Scalar], shape: &[usize], indent: usize) -> String {
    if shape.len() <= 1 {
        let items: Vec<String> = elems.iter().map(|e| e.to_string()).collect();
        return format!("[{}]", items.join(", "));
    }
    let step = shape[1..].iter().product::<usize>().max(1);
    let rows: Vec<String> = elems
        .chunks(step)
        .take(shape[0])
        .map(|c| nested_text(c, &shape[1..], indent + 1))
        .collect();
    let sep = format!(",\n{}", " ".repeat(indent + 1));
    format!("[{}]", rows.join(&sep))
}

fn nested_json(elems: &[Scalar], shape: &[usize]) -> Json {
    if shape.len() <= 1 {
        return Json::Array(elems.iter().map(|&e| scalar_json(e)).collect());
    }
    let step = shape[1..].iter().product::<usize>().max(1);
    Json::Array(
        elems
            .chunks(step)
            .take(shape[0])
            .map(|c| nested_json(c, &shape[1..]))
            .collect(),
    )
}

/// One-line summary: stored shape (and declared shape when rows are missing), min /
/// max / mean, first values.
pub fn array_summary(a: &ArrayValue) -> String {
    let mut s = format!("{} {}", a.dtype.name(), dims(&a.shape));
    if a.shape != a.capacity {
        s += &format!(" of {}", dims(&a.capacity));
    }
    match a.stats() {
        None => s += " empty",
        Some(st) => {
            s += &format!(
                " min {} max {} mean {}",
                st.min,
                st.max,
                short_float(st.mean)
            );
            let first: Vec<String> = a
                .elements()
                .take(FIRST_VALUES)
                .map(|e| e.to_string())
                .collect();
            let more = if a.len() > FIRST_VALUES { ", …" } else { "" };
            s += &format!(" first [{}{more}]", first.join(", "));
        }
    }
    s
}

/// The whole array, nested by its stored shape.
pub fn array_full(a: &ArrayValue) -> String {
    let elems: Vec<Scalar> = a.elements().collect();
    nested_text(&elems, &a.shape, 0)
}

fn array_json(a: &ArrayValue, full: bool) -> Json {
    let mut m = Map::new();
    m.insert("dtype".into(), json!(a.dtype.name()));
    m.insert("shape".into(), json!(a.shape));
    m.insert("capacity".into(), json!(a.capacity));
    let st = a.stats();
    m.insert("min".into(), st.map_or(Json::Null, |s| scalar_json(s.min)));
    m.insert("max".into(), st.map_or(Json::Null, |s| scalar_json(s.max)));
    m.insert(
        "mean".into(),
        st.map_or(Json::Null, |s| scalar_json(Scalar::F64(s.mean))),
    );
    let first: Vec<Json> = a.elements().take(FIRST_VALUES).map(scalar_json).collect();
    m.insert("first".into(), Json::Array(first));
    if full {
        let elems: Vec<Scalar> = a.elements().collect();
        m.insert("values".into(), nested_json(&elems, &a.shape));
    }
    Json::Object(m)
}

/// A field's value as one line of text: `-` if unwritten, strings quoted, arrays
/// summarised.
pub fn value_text(sample: &FieldSample) -> String {
    if !sample.status.written {
        return "-".to_string();
    }
    match &sample.value {
        Err(e) => format!("<{}>", clean(e)),
        Ok(Value::Scalar(s)) => s.to_string(),
        Ok(Value::Str(s)) => quote(s),
        Ok(Value::Array(a)) => array_summary(a),
    }
}

/// A field as JSON: `{"status", "modified", "value"}` (+ `"error"` if it could not be
/// decoded). The value of an unwritten field is null.
pub fn sample_json(sample: &FieldSample, full: bool) -> Json {
    let mut m = Map::new();
    m.insert("status".into(), json!(sample.status.name()));
    m.insert("modified".into(), json!(sample.status.modified));
    let value = match (&sample.value, sample.status.written) {
        (_, false) | (Err(_), _) => Json::Null,
        (Ok(Value::Scalar(s)), _) => scalar_json(*s),
        (Ok(Value::Str(s)), _) => json!(s),
        (Ok(Value::Array(a)), _) => array_json(a, full),
    };
    m.insert("value".into(), value);
    if let Err(e) = &sample.value {
        m.insert("error".into(), json!(e));
    }
    Json::Object(m)
}

/// A record as JSON: commit, lost and the fields by name, in schema order.
pub fn record_json(fields: &[FieldInfo], rec: &Record, full: bool) -> Json {
    let mut fm = Map::new();
    for (f, s) in fields.iter().zip(&rec.fields) {
        fm.insert(f.name.clone(), sample_json(s, full));
    }
    json!({"commit": rec.commit, "lost": rec.lost, "fields": Json::Object(fm)})
}

/// The schema as JSON: name, type, offset, size of each field.
pub fn schema_json(fields: &[FieldInfo]) -> Json {
    Json::Array(
        fields
            .iter()
            .map(|f| {
                json!({
                    "name": f.name,
                    "type": f.kind.to_string(),
                    "offset": f.offset,
                    "size": f.size,
                })
            })
            .collect(),
    )
}

pub fn writer_json(w: WriterState) -> Json {
    json!({"state": w.state(), "pid": w.pid()})
}

/// `rwxr-x---` for the low nine permission bits (with s / t when set).
pub fn perms_text(perms: u32) -> String {
    let mut s = String::new();
    for (i, who) in [(6, 0o4000), (3, 0o2000), (0, 0o1000)] {
        let bits = (perms >> i) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        let x = bits & 1 != 0;
        let special = perms & who != 0;
        let (on, off) = if i == 0 { ('t', 'T') } else { ('s', 'S') };
        s.push(match (x, special) {
            (true, false) => 'x',
            (false, false) => '-',
            (true, true) => on,
            (false, true) => off,
        });
    }
    s
}

/// `user:group` of a file (numbers where no name is known).
pub fn owner_text(f: &FileInfo) -> String {
    format!("{}:{}", users::user(f.uid), users::group(f.gid))
}

pub fn file_json(f: &FileInfo) -> Json {
    json!({
        "uid": f.uid,
        "user": users::user_name(f.uid),
        "gid": f.gid,
        "group": users::group_name(f.gid),
        "permissions": format!("{:04o}", f.perms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Dtype, Status};

    fn arr(dtype: Dtype, shape: &[usize], cap: &[usize], data: Vec<u8>) -> ArrayValue {
        ArrayValue {
            dtype,
            shape: shape.to_vec(),
            capacity: cap.to_vec(),
            data,
        }
    }

    #[test]
    fn floats() {
        assert_eq!(short_float(1013.25), "1013.25");
        assert_eq!(short_float(2.0 / 3.0), "0.666667");
        assert_eq!(short_float(1.0e20), "1.00000e20");
        assert_eq!(short_float(f64::NAN), "nan");
        assert_eq!(scalar_json(Scalar::F32(0.1)).to_string(), "0.1");
        assert_eq!(scalar_json(Scalar::F64(f64::NEG_INFINITY)), json!("-inf"));
        assert_eq!(
            scalar_json(Scalar::UInt(u64::MAX)).to_string(),
            "18446744073709551615"
        );
    }

    #[test]
    fn arrays_summarised_and_whole() {
        let a = arr(Dtype::U8, &[1, 2, 3], &[2, 2, 3], (1..=6).collect());
        assert_eq!(
            array_summary(&a),
            "uint8 [1,2,3] of [2,2,3] min 1 max 6 mean 3.5 first [1, 2, 3, 4, 5, 6]"
        );
        assert_eq!(array_full(&a), "[[[1, 2, 3],\n  [4, 5, 6]]]");
        let f = arr(
            Dtype::F64,
            &[2],
            &[2],
            [1.0f64, 2.5].iter().flat_map(|x| x.to_le_bytes()).collect(),
        );
        assert_eq!(array_full(&f), "[1.0, 2.5]");
        let j = array_json(&a, true);
        assert_eq!(j["values"], json!([[[1, 2, 3], [4, 5, 6]]]));
        let long = arr(Dtype::U8, &[10], &[10], (0..10).collect());
        assert!(array_summary(&long).ends_with("first [0, 1, 2, 3, 4, 5, 6, 7, …]"));
        let empty = arr(Dtype::Bool, &[0], &[5], vec![]);
        assert_eq!(array_summary(&empty), "bool [0] of [5] empty");
        assert_eq!(array_json(&empty, false)["min"], Json::Null);
    }

    #[test]
    fn unwritten_fields_have_no_value() {
        let s = FieldSample {
            status: Status::default(),
            value: Ok(Value::Scalar(Scalar::F64(0.0))),
        };
        assert_eq!(value_text(&s), "-");
        assert_eq!(sample_json(&s, false)["value"], Json::Null);
        assert_eq!(sample_json(&s, false)["status"], json!("unwritten"));
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(clean("plain ünïcode"), "plain ünïcode");
        assert_eq!(clean("a\u{1b}[2Jb\nc"), "a\\u{1b}[2Jb\\nc");
        assert_eq!(quote("x\u{1b}"), "\"x\\u{1b}\"");
    }

    #[test]
    fn permissions() {
        assert_eq!(perms_text(0o600), "rw-------");
        assert_eq!(perms_text(0o1777), "rwxrwxrwt");
        assert_eq!(perms_text(0o4640), "rwSr-----");
    }
}
