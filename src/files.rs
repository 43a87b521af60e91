//! Files only kagi's user may read: the data directory, the key file and
//! the admin token. A database readable by others gave away live codes;
//! a symlink named `admin.token` made kagi overwrite the file it pointed to.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// From here on every file and directory this process creates is its
/// owner's alone (0600 and 0700), whatever umask kagi was started with:
/// sled creates its files with the default mode.
pub fn keep_new_files_private() {
    // SAFETY: umask only sets this process's file-creation mask.
    unsafe {
        libc::umask(0o077);
    }
}

/// Makes sure `dir` is private to this user: created 0700 when missing;
/// when it exists, refused (with the command that mends it) if another
/// user owns it or others may read, write or enter it. Files and
/// directories inside that others could read are made private; the count
/// is returned.
pub fn private_dir(dir: &Path) -> Result<usize, String> {
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            // The mode of a new directory is masked; set it outright.
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| format!("cannot make {} private: {e}", dir.display()))?;
            Ok(0)
        }
        Err(e) => Err(format!("cannot read {}: {e}", dir.display())),
        Ok(meta) => {
            let shown = dir.display();
            if !meta.is_dir() {
                return Err(format!(
                    "{shown} is not a directory (a data directory must be one, not a link)"
                ));
            }
            // SAFETY: geteuid has no preconditions.
            let me = unsafe { libc::geteuid() };
            if meta.uid() != me {
                return Err(format!(
                    "{shown} belongs to user {}, not to the user kagi runs as ({me}); run `chown -R {me} {shown}` or run kagi as its owner",
                    meta.uid()
                ));
            }
            let mode = meta.mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(format!(
                    "{shown} can be read or written by others (mode {mode:03o}); run `chmod 700 {shown}`"
                ));
            }
            make_contents_private(dir)
        }
    }
}

/// Takes group and other bits off everything under `dir` (files written by
/// an older kagi under a looser umask).
fn make_contents_private(dir: &Path) -> Result<usize, String> {
    let mut mended = 0;
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        if meta.file_type().is_symlink() {
            continue;
        }
        let mode = meta.mode() & 0o777;
        if mode & 0o077 != 0 {
            fs::set_permissions(entry.path(), fs::Permissions::from_mode(mode & 0o700))
                .map_err(|e| format!("cannot make {} private: {e}", entry.path().display()))?;
            mended += 1;
        }
        if meta.is_dir() {
            mended += make_contents_private(&entry.path())?;
        }
    }
    Ok(mended)
}

/// Why a private file was not read.
#[derive(Debug)]
pub enum ReadError {
    /// Others could have read or replaced it: the message says how to mend.
    Unsafe(String),
    Io(io::Error),
}

/// Reads a file that must be this user's alone: not a symlink (opened with
/// `O_NOFOLLOW`), owned by this user, 0600 or stricter, in a directory
/// others cannot write (else they could have swapped it). None when it
/// does not exist.
pub fn read_private(path: &Path) -> Result<Option<String>, ReadError> {
    use std::io::Read;
    let shown = path.display();
    let mut file = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(ReadError::Unsafe(format!(
                "{shown} is a symbolic link: put the file itself there"
            )))
        }
        Err(e) => return Err(ReadError::Io(e)),
    };
    let meta = file.metadata().map_err(ReadError::Io)?;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(ReadError::Unsafe(format!(
            "{shown} belongs to user {}, not to the user kagi runs as ({me}); run `chown {me} {shown}`",
            meta.uid()
        )));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(ReadError::Unsafe(format!(
            "{shown} can be read by others (mode {mode:03o}); run `chmod 600 {shown}`"
        )));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let dir_meta = fs::metadata(dir).map_err(ReadError::Io)?;
        let writable_by_others = dir_meta.mode() & 0o022 != 0 && dir_meta.mode() & 0o1000 == 0;
        if writable_by_others || (dir_meta.uid() != me && dir_meta.uid() != 0) {
            return Err(ReadError::Unsafe(format!(
                "{} could be written by others, who could swap {shown}: make it writable by its owner only (and owned by root or kagi's user)",
                dir.display()
            )));
        }
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(ReadError::Io)?;
    Ok(Some(text))
}

/// Writes `text` to `path`, mode 0600, so that the file is whole or absent
/// and never anything else: a new temporary file beside it (created, never
/// opened through a link), flushed to disk, then renamed over whatever
/// `path` was (a rename replaces a symlink itself, not its target).
pub fn write_private(path: &Path, text: &str) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = dir.join(format!(
        ".{name}.{}",
        crate::secret::hex(&crate::secret::random_bytes::<6>())
    ));
    let written = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temporary)?;
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&temporary, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "kagi-files-{name}-{}",
            crate::secret::hex(&crate::secret::random_bytes::<6>())
        ));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_private_file_replaces_a_link_and_never_writes_through_it() {
        let dir = scratch("link");
        let victim = dir.join("victim");
        fs::write(&victim, "keep me").unwrap();
        let token = dir.join("admin.token");
        std::os::unix::fs::symlink(&victim, &token).unwrap();
        write_private(&token, "secret").unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep me");
        let meta = fs::symlink_metadata(&token).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.mode() & 0o777, 0o600);
        // An existing file with a loose mode ends up 0600 too.
        fs::set_permissions(&token, fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&token, "again").unwrap();
        assert_eq!(fs::metadata(&token).unwrap().mode() & 0o777, 0o600);
        assert_eq!(fs::read_to_string(&token).unwrap(), "again");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_private_file_is_read_only_when_nobody_else_could_have_touched_it() {
        let dir = scratch("read");
        let file = dir.join("kagi.key");
        assert!(matches!(read_private(&file), Ok(None)));
        write_private(&file, "k").unwrap();
        assert_eq!(read_private(&file).unwrap().as_deref(), Some("k"));
        fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
        let Err(ReadError::Unsafe(why)) = read_private(&file) else {
            panic!("a file others can read")
        };
        assert!(why.contains("chmod 600"), "{why}");
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.join("link.key");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(matches!(read_private(&link), Err(ReadError::Unsafe(_))));
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(
            matches!(read_private(&file), Err(ReadError::Unsafe(_))),
            "an open directory"
        );
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_data_directory_others_can_enter_is_refused_with_the_command_that_mends_it() {
        let dir = scratch("mode");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let refused = private_dir(&dir).unwrap_err();
        assert!(refused.contains("chmod 700"), "{refused}");
        assert!(refused.contains(&dir.display().to_string()));
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        fs::write(dir.join("db"), "x").unwrap();
        fs::set_permissions(dir.join("db"), fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(private_dir(&dir), Ok(1));
        assert_eq!(fs::metadata(dir.join("db")).unwrap().mode() & 0o777, 0o600);
        let fresh = dir.join("new/deeper");
        assert_eq!(private_dir(&fresh), Ok(0));
        assert_eq!(fs::metadata(&fresh).unwrap().mode() & 0o777, 0o700);
        fs::remove_dir_all(dir).unwrap();
    }
}
