//! Zenoh session setup: a configuration file, endpoints and mode from the command line,
//! all passed through to Zenoh.

use std::path::PathBuf;

use zenoh::Wait;

use crate::error::BridgeError;

/// Zenoh's role for the bridge's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZenohMode {
    /// Connects to peers and routers and accepts connections (Zenoh's default).
    Peer,
    /// Connects to one router (or peer) only.
    Client,
}

impl std::str::FromStr for ZenohMode {
    type Err = BridgeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "peer" => Ok(ZenohMode::Peer),
            "client" => Ok(ZenohMode::Client),
            _ => Err(BridgeError::Config(format!(
                "mode must be 'peer' or 'client', got '{s}'"
            ))),
        }
    }
}

/// How to open the Zenoh session. Everything not set here comes from `config_file`, or
/// from Zenoh's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZenohOptions {
    /// A Zenoh configuration file (JSON5), read first.
    pub config_file: Option<PathBuf>,
    /// `peer` or `client`.
    pub mode: Option<ZenohMode>,
    /// Endpoints to connect to, e.g. `tcp/192.0.2.7:7447`; replaces the file's list.
    pub connect: Vec<String>,
    /// Endpoints to listen on, e.g. `tcp/0.0.0.0:7447`; replaces the file's list.
    pub listen: Vec<String>,
    /// Multicast scouting (discovery of peers on the LAN): `Some(false)` turns it off,
    /// as tests and explicit-endpoint setups want.
    pub multicast_scouting: Option<bool>,
}

/// A JSON string literal for `s`.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_list(items: &[String]) -> String {
    let parts: Vec<String> = items.iter().map(|s| json_string(s)).collect();
    format!("[{}]", parts.join(","))
}

impl ZenohOptions {
    /// The Zenoh configuration these options describe.
    pub fn to_config(&self) -> Result<zenoh::Config, BridgeError> {
        let mut config = match &self.config_file {
            Some(path) => zenoh::Config::from_file(path).map_err(|e| {
                BridgeError::Config(format!("zenoh config file {}: {e}", path.display()))
            })?,
            None => zenoh::Config::default(),
        };
        let set = |config: &mut zenoh::Config, key: &str, value: String| {
            config
                .insert_json5(key, &value)
                .map_err(|e| BridgeError::Config(format!("{key} = {value}: {e}")))
        };
        if let Some(mode) = self.mode {
            let m = match mode {
                ZenohMode::Peer => "peer",
                ZenohMode::Client => "client",
            };
            set(&mut config, "mode", json_string(m))?;
        }
        if !self.connect.is_empty() {
            set(&mut config, "connect/endpoints", json_list(&self.connect))?;
        }
        if !self.listen.is_empty() {
            set(&mut config, "listen/endpoints", json_list(&self.listen))?;
        }
        if let Some(on) = self.multicast_scouting {
            set(&mut config, "scouting/multicast/enabled", on.to_string())?;
        }
        Ok(config)
    }

    /// Opens a session with this configuration.
    pub fn open(&self) -> Result<zenoh::Session, BridgeError> {
        zenoh::open(self.to_config()?)
            .wait()
            .map_err(BridgeError::Zenoh)
    }

    /// Options for a loopback test: peer mode, multicast scouting off, listening on
    /// `listen` and connecting to `connect` (e.g. `tcp/127.0.0.1:7447`).
    pub fn loopback(listen: &[&str], connect: &[&str]) -> Self {
        ZenohOptions {
            config_file: None,
            mode: Some(ZenohMode::Peer),
            connect: connect.iter().map(|s| s.to_string()).collect(),
            listen: listen.iter().map(|s| s.to_string()).collect(),
            multicast_scouting: Some(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_reach_the_config() {
        let o = ZenohOptions {
            mode: Some(ZenohMode::Client),
            connect: vec!["tcp/127.0.0.1:17447".into()],
            listen: vec!["tcp/127.0.0.1:17448".into()],
            multicast_scouting: Some(false),
            ..Default::default()
        };
        let c = o.to_config().unwrap();
        assert_eq!(c.get_json("mode").unwrap(), "\"client\"");
        assert!(c
            .get_json("connect/endpoints")
            .unwrap()
            .contains("tcp/127.0.0.1:17447"));
        assert!(c
            .get_json("listen/endpoints")
            .unwrap()
            .contains("tcp/127.0.0.1:17448"));
        assert_eq!(c.get_json("scouting/multicast/enabled").unwrap(), "false");
    }

    #[test]
    fn bad_endpoint_and_mode_are_config_errors() {
        let o = ZenohOptions {
            connect: vec!["not an endpoint".into()],
            ..Default::default()
        };
        assert!(matches!(o.to_config(), Err(BridgeError::Config(_))));
        assert!("router".parse::<ZenohMode>().is_err());
        assert_eq!("peer".parse::<ZenohMode>().unwrap(), ZenohMode::Peer);
    }

    #[test]
    fn config_file_is_read_then_overridden() {
        let dir = std::env::temp_dir().join(format!("flexshm-zenoh-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("z.json5");
        std::fs::write(
            &path,
            r#"{ mode: "peer", connect: { endpoints: ["tcp/127.0.0.1:17001"] } }"#,
        )
        .unwrap();
        let o = ZenohOptions {
            config_file: Some(path.clone()),
            listen: vec!["tcp/127.0.0.1:17002".into()],
            ..Default::default()
        };
        let c = o.to_config().unwrap();
        assert!(c.get_json("connect/endpoints").unwrap().contains("17001"));
        assert!(c.get_json("listen/endpoints").unwrap().contains("17002"));
        let missing = ZenohOptions {
            config_file: Some(dir.join("missing.json5")),
            ..Default::default()
        };
        assert!(matches!(missing.to_config(), Err(BridgeError::Config(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(json_list(&["x".into(), "y".into()]), r#"["x","y"]"#);
    }
}
