//! Where the master key comes from: `LEARNOMY_WEBHOOKS_MASTER_KEY`, else `data_dir/master.key`,
//! created on first start with mode 0600 so only the service's user can read it (in a data
//! folder created 0700).

use std::io::Write;
use std::path::Path;

use lwh_domain::MasterKey;

/// Environment variable that, when set, holds the master key (hex or base64 of 32 bytes).
pub const MASTER_KEY_ENV: &str = "LEARNOMY_WEBHOOKS_MASTER_KEY";

/// Loads the master key from the environment or `data_dir/master.key`, generating the file
/// when neither exists. Fails loudly on an unreadable or malformed key: starting with a new key
/// would make every stored secret undecryptable.
pub fn load_or_create_master_key(data_dir: &Path) -> Result<MasterKey, String> {
    if let Ok(text) = std::env::var(MASTER_KEY_ENV) {
        return MasterKey::parse(&text).map_err(|e| format!("{MASTER_KEY_ENV}: {e}"));
    }
    let path = data_dir.join("master.key");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            refuse_if_shared(&path)?;
            lwh_storage::create_private_dir(data_dir)
                .map_err(|e| format!("cannot make {} private: {e}", data_dir.display()))?;
            MasterKey::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            lwh_storage::create_private_dir(data_dir)
                .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
            let key = MasterKey::generate();
            write_private(&path, &key.to_hex())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            tracing::info!(path = %path.display(), "generated a new master key");
            Ok(key)
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// A master key other users can read is not secret: refuse to start, and say how to fix it
/// (tightening it silently would hide that it may have been read).
fn refuse_if_shared(path: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "{path} is readable by other users (mode {mode:o}); the master key decrypts every \
                 webhook secret. Make it private with: chmod 600 {path} (and consider rotating the \
                 webhooks' secrets if others could have read it)",
                path = path.display(),
                mode = mode & 0o777
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_a_private_key_file_once_and_reuses_it() {
        let dir = std::env::temp_dir().join(format!("lwh-key-{}", rand::random::<u64>()));
        let first = load_or_create_master_key(&dir).unwrap();
        let again = load_or_create_master_key(&dir).unwrap();
        assert_eq!(first.to_hex(), again.to_hex());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("master.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(dir.join("master.key"), "garbage").unwrap();
        assert!(load_or_create_master_key(&dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
