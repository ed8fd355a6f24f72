//! Field type specifications: the strings a record class annotates its fields with.
//!
//! The Python side turns `float`, `int` and `bool` into `"float64"`, `"int32"` and
//! `"bool"`; everything else arrives here as the annotation string itself:
//! a dtype name (`"uint16"`, a scalar), `"str[N]"`, or `"dtype[d0,d1,...]"`.

use flexshm_core::{Dims, Dtype, Kind, MAX_DIMS};

/// Parses one annotation string into a field kind; the error says what is wrong in words
/// a user can act on (the caller adds the field name).
pub fn parse_kind(spec: &str) -> Result<Kind, String> {
    let spec = spec.trim();
    let Some(open) = spec.find('[') else {
        return Dtype::from_name(spec)
            .map(Kind::Scalar)
            .ok_or_else(|| format!("unknown type {spec:?}; {}", supported()));
    };
    let Some(inner) = spec[open + 1..].strip_suffix(']') else {
        return Err(format!("{spec:?} has no closing ']'"));
    };
    let base = spec[..open].trim();
    let dims = parse_dims(inner).map_err(|e| format!("{spec:?}: {e}"))?;
    if base == "str" {
        if dims.len() != 1 {
            return Err(format!(
                "{spec:?}: a string takes one capacity in characters, like \"str[64]\""
            ));
        }
        let chars = dims[0];
        if chars > flexshm_core::MAX_EXTENT / 4 {
            return Err(format!("{spec:?}: capacity {chars} is too large"));
        }
        return Ok(Kind::Str { chars });
    }
    let dtype = Dtype::from_name(base)
        .ok_or_else(|| format!("{spec:?}: unknown element type {base:?}; {}", supported()))?;
    let dims = Dims::new(&dims).ok_or_else(|| format!("{spec:?}: bad dimensions"))?;
    let kind = Kind::Array { dtype, dims };
    if kind.data_size().is_none() {
        return Err(format!("{spec:?}: the array is too large for one record"));
    }
    Ok(kind)
}

fn parse_dims(inner: &str) -> Result<Vec<u32>, String> {
    let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
    if parts.len() > MAX_DIMS {
        return Err(format!("at most {MAX_DIMS} dimensions are supported"));
    }
    parts
        .iter()
        .map(|p| match p.parse::<u32>() {
            Ok(0) => Err("dimensions must be at least 1".to_string()),
            Ok(n) if n > flexshm_core::MAX_EXTENT => Err(format!("dimension {n} is too large")),
            Ok(n) => Ok(n),
            Err(_) => Err(format!("{p:?} is not a positive integer")),
        })
        .collect()
}

fn supported() -> String {
    let names: Vec<&str> = Dtype::ALL.iter().map(|d| d.name()).collect();
    format!(
        "use float, int, bool, \"str[N]\", a dtype name or \"dtype[d0,...]\" with dtype one of {}",
        names.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_strings_and_arrays_parse() {
        assert_eq!(parse_kind("float64"), Ok(Kind::Scalar(Dtype::F64)));
        assert_eq!(parse_kind(" uint8 "), Ok(Kind::Scalar(Dtype::U8)));
        assert_eq!(parse_kind("str[32]"), Ok(Kind::Str { chars: 32 }));
        assert_eq!(
            parse_kind("float32[480, 640,3]"),
            Ok(Kind::array(Dtype::F32, &[480, 640, 3]))
        );
        for d in Dtype::ALL {
            assert_eq!(parse_kind(d.name()), Ok(Kind::Scalar(d)));
            assert_eq!(
                parse_kind(&format!("{}[2,3]", d.name())),
                Ok(Kind::array(d, &[2, 3]))
            );
        }
    }

    #[test]
    fn bad_specs_say_why() {
        for (spec, needle) in [
            ("float16", "unknown type"),
            ("str", "unknown type"),
            ("str[0]", "at least 1"),
            ("str[2,3]", "one capacity"),
            ("str[x]", "not a positive integer"),
            ("int8[1,2,3,4,5]", "at most 4"),
            ("complex64[3]", "unknown element type"),
            ("uint8[3", "closing"),
            ("float64[]", "not a positive integer"),
            ("uint64[65536,65536]", "too large"),
        ] {
            let err = parse_kind(spec).unwrap_err();
            assert!(err.contains(needle), "{spec}: {err}");
        }
    }
}
