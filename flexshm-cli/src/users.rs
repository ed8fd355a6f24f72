//! User and group names from /etc/passwd and /etc/group (numbers when not listed there,
//! e.g. users from a directory service).

use std::collections::HashMap;
use std::sync::OnceLock;

/// `id -> name` from a colon-separated file whose third column is the id.
fn table(path: &str) -> HashMap<u32, String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut map = HashMap::new();
    for line in text.lines() {
        let mut cols = line.split(':');
        let (Some(name), Some(_), Some(id)) = (cols.next(), cols.next(), cols.next()) else {
            continue;
        };
        if let Ok(id) = id.parse() {
            // The first entry of an id wins, as with getpwuid.
            map.entry(id).or_insert_with(|| name.to_string());
        }
    }
    map
}

fn users() -> &'static HashMap<u32, String> {
    static T: OnceLock<HashMap<u32, String>> = OnceLock::new();
    T.get_or_init(|| table("/etc/passwd"))
}

fn groups() -> &'static HashMap<u32, String> {
    static T: OnceLock<HashMap<u32, String>> = OnceLock::new();
    T.get_or_init(|| table("/etc/group"))
}

pub fn user_name(uid: u32) -> Option<&'static str> {
    users().get(&uid).map(String::as_str)
}

pub fn group_name(gid: u32) -> Option<&'static str> {
    groups().get(&gid).map(String::as_str)
}

/// The user's name, or the number.
pub fn user(uid: u32) -> String {
    user_name(uid).map_or_else(|| uid.to_string(), str::to_string)
}

/// The group's name, or the number.
pub fn group(gid: u32) -> String {
    group_name(gid).map_or_else(|| gid.to_string(), str::to_string)
}
