//! Typed reads from a JSON object, each failure naming the key (CNI code 7).

use serde_json::{Map, Value};

use super::error::{code, CniError};

pub type Obj = Map<String, Value>;

fn wrong(key: &str, want: &str, got: &Value) -> CniError {
    CniError::new(
        code::INVALID_CONFIG,
        format!("{key:?} must be {want}, got {got}"),
    )
}

pub fn opt_str<'a>(o: &'a Obj, key: &str) -> Result<Option<&'a str>, CniError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(wrong(key, "a string", v)),
    }
}

pub fn opt_bool(o: &Obj, key: &str) -> Result<Option<bool>, CniError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(wrong(key, "true or false", v)),
    }
}

pub fn bool_or_false(o: &Obj, key: &str) -> Result<bool, CniError> {
    Ok(opt_bool(o, key)?.unwrap_or(false))
}

pub fn opt_u64(o: &Obj, key: &str) -> Result<Option<u64>, CniError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| wrong(key, "a non-negative integer", v)),
    }
}

pub fn opt_obj<'a>(o: &'a Obj, key: &str) -> Result<Option<&'a Obj>, CniError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(v) => Err(wrong(key, "an object", v)),
    }
}

pub fn opt_array<'a>(o: &'a Obj, key: &str) -> Result<Option<&'a Vec<Value>>, CniError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(v) => Err(wrong(key, "a list", v)),
    }
}

pub fn str_list(o: &Obj, key: &str) -> Result<Vec<String>, CniError> {
    let Some(items) = opt_array(o, key)? else {
        return Ok(Vec::new());
    };
    items
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| wrong(key, "a list of strings", v))
        })
        .collect()
}
