//! Writing a file so that a crash leaves either the old content or the new one: a
//! temporary file in the same directory, fsync, rename over the target, fsync of the
//! directory. Used for passkey files and HAR archives (mode 0600: they may hold
//! secrets) and `--output` reports, which a textfile collector or a monitor may read at
//! any moment.
//!
//! Several writers may target one file at once (parallel runs with one `--output`, or
//! one passkey file): each writer has a temporary file of its own (process id and a
//! random part in the name), holds an advisory lock on it while it writes, and clears
//! only temporary files that are stale — older than [`STALE_AFTER`] and locked by no
//! one, i.e. left by a writer that crashed — never another writer's fresh one.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How old an unlocked temporary file must be before a later write removes it.
pub const STALE_AFTER: Duration = Duration::from_secs(60);

/// Writes `contents` to `path` atomically with permission bits `mode` (Unix). The
/// temporary file is created with `mode` (narrowed by the umask) and renamed over the
/// target, so a 0600 file is never readable by others, not even while it is written nor
/// when it replaces a wider one.
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
    let prefix = temp_prefix(&name);
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
        // "Being written": a later writer's clean-up leaves a locked temporary file alone.
        // A file system without locks still has the age rule.
        let _ = file.try_lock();
        file.write_all(contents)?;
        file.sync_all()?;
        // Test hook: die between the write and the rename, as a crash would.
        if std::env::var_os("SSOPROBE_FAILPOINT").is_some_and(|v| v == "atomic-write-before-rename")
        {
            std::process::abort();
        }
        #[cfg(not(unix))]
        drop(file);
        std::fs::rename(&tmp, path)?;
        #[cfg(unix)]
        drop(file);
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
    remove_stale(&dir, &prefix, SystemTime::now());
    Ok(())
}

/// The name prefix of the temporary files of writes to a file named `name`.
fn temp_prefix(name: &str) -> String {
    format!(".{name}.tmp-")
}

/// Removes the temporary files (of writes to one target) that a crashed writer left:
/// older than [`STALE_AFTER`] at `now` and not locked by a writer.
fn remove_stale(dir: &Path, prefix: &str, now: SystemTime) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(prefix) {
            continue;
        }
        let path = entry.path();
        // Never follow or remove anything but a plain file someone left.
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.file_type().is_file() {
            continue;
        }
        let old = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age >= STALE_AFTER);
        if !old {
            continue;
        }
        let Ok(file) = std::fs::File::open(&path) else {
            continue;
        };
        // Locked: a writer is still at it (a slow disk), leave it.
        if file.try_lock().is_ok() {
            let _ = std::fs::remove_file(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir() -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("ssoprobe-atomic-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn age(path: &Path, by: Duration) {
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(SystemTime::now() - by).unwrap();
    }

    #[test]
    fn only_old_unlocked_temporary_files_are_removed() {
        let dir = temp_dir();
        let target = dir.join("report.json");
        let prefix = temp_prefix("report.json");
        let fresh = dir.join(format!("{prefix}1-fresh"));
        let stale = dir.join(format!("{prefix}1-stale"));
        let busy = dir.join(format!("{prefix}1-busy"));
        let other = dir.join(".other.json.tmp-1-stale");
        for p in [&fresh, &stale, &busy, &other] {
            std::fs::write(p, b"partial").unwrap();
        }
        for p in [&stale, &busy, &other] {
            age(p, STALE_AFTER * 2);
        }
        // A slow writer still holds its file.
        let held = std::fs::File::open(&busy).unwrap();
        held.lock().unwrap();
        write(&target, b"whole\n", 0o644).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"whole\n");
        assert!(fresh.exists(), "another writer's fresh file was removed");
        assert!(busy.exists(), "a locked temporary file was removed");
        assert!(!stale.exists(), "a crashed writer's old file was kept");
        assert!(other.exists(), "another target's file was touched");
        drop(held);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_private_file_replaces_a_wider_one_with_its_own_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir();
        let target = dir.join("run.har");
        std::fs::write(&target, b"old").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
        write(&target, b"new", 0o600).unwrap();
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn parallel_writers_all_succeed_and_the_file_is_whole() {
        let dir = temp_dir();
        let target = dir.join("out.txt");
        for round in 0..20 {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let target = target.clone();
                    std::thread::spawn(move || {
                        let body = format!("{round}-{i}\n").repeat(4096);
                        write(&target, body.as_bytes(), 0o644)
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap().expect("a parallel writer failed");
            }
            let text = std::fs::read_to_string(&target).unwrap();
            let first = text.lines().next().unwrap().to_string();
            assert!(text.lines().all(|l| l == first), "torn file");
            assert_eq!(text.lines().count(), 4096);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
