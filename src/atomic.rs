//! Writing a file so that a crash leaves either the old content or the new one: a
//! temporary file in the same directory, fsync, rename over the target, fsync of the
//! directory. Used for passkey files (mode 0600) and `--output` reports, which a
//! textfile collector or a monitor may read at any moment.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `contents` to `path` atomically with permission bits `mode` (Unix).
pub fn write(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("not a file name"))?
        .to_string_lossy()
        .into_owned();
    let prefix = format!(".{name}.tmp-");
    let tmp = dir.join(format!(
        "{prefix}{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let result = (|| -> std::io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(mode);
        }
        #[cfg(not(unix))]
        let _ = mode;
        let mut file = options.open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        // Test hook: die between the write and the rename, as a crash would.
        if std::env::var_os("SSOPROBE_FAILPOINT").is_some_and(|v| v == "atomic-write-before-rename")
        {
            std::process::abort();
        }
        std::fs::rename(&tmp, path)?;
        #[cfg(unix)]
        if let Ok(d) = std::fs::File::open(&dir) {
            // Makes the rename itself durable.
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // Temporary files a crashed earlier write left behind: remove them.
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    Ok(())
}
