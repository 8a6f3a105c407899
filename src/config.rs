//! Settings from the config file, `LEARNOMY_WEBHOOKS_*` variables and flags, in that order of
//! precedence (later wins).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use lwh_app::{LogFormat, Settings};

use crate::cli::{GlobalArgs, LogFormatArg};

/// The config file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "learnomy-webhooks.toml";

/// Variables under the prefix that are not settings (read elsewhere, never echoed).
const NOT_SETTINGS: &[&str] = &["master_key", "token"];

/// Assembles the settings; `listen` is the `serve --listen` flag.
pub fn load(global: &GlobalArgs, listen: Option<std::net::SocketAddr>) -> anyhow::Result<Settings> {
    let mut figment = Figment::from(Serialized::defaults(Settings::default()));
    if let Some(file) = config_file(global.config.as_deref())? {
        figment = figment.merge(Toml::file(file));
    }
    figment = figment.merge(Env::prefixed("LEARNOMY_WEBHOOKS_").ignore(NOT_SETTINGS));
    if let Some(dir) = &global.data_dir {
        figment = figment.merge(("data_dir", dir));
    }
    if let Some(url) = &global.database_url {
        figment = figment.merge(("database_url", url));
    }
    if let Some(format) = global.log_format {
        let format = match format {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        };
        figment = figment.merge(("log_format", format));
    }
    if let Some(listen) = listen {
        figment = figment.merge(("listen", listen.to_string()));
    }
    let settings: Settings = figment.extract().context("invalid configuration")?;
    if let Err(problems) = settings.validate() {
        bail!("invalid configuration: {}", problems.join("; "));
    }
    Ok(settings)
}

fn config_file(explicit: Option<&Path>) -> anyhow::Result<Option<PathBuf>> {
    match explicit {
        Some(path) if !path.exists() => bail!("config file {} does not exist", path.display()),
        Some(path) => Ok(Some(path.to_path_buf())),
        None => Ok(Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.exists())),
    }
}
