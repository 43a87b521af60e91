//! What kagi leaves on disk: a data directory and files only its user can
//! read, whatever the umask; keys in a key file beside the database, so
//! that the database files alone hold no live code or link; private files
//! written so that a planted symlink cannot redirect them.

use crate::support::kaigo::{self, OSAKA_MAIL, OSAKA_OFFICE};
use crate::support::{kagi_cli, portal, run_kagi, scratch_dir, wait_for_mails_at, Client};
use std::ffi::OsStr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A lab `serve` config (capture, cheap argon2) over `data`.
fn lab_config(dir: &Path, data: &Path) -> PathBuf {
    crate::support::lab_config(dir, data, "")
}

/// Every file and directory under `dir`, with its mode.
fn modes(dir: &Path) -> Vec<(PathBuf, u32)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let meta = entry.path().symlink_metadata().unwrap();
        out.push((entry.path(), meta.mode() & 0o777));
        if meta.is_dir() {
            out.extend(modes(&entry.path()));
        }
    }
    out
}

#[test]
fn the_data_directory_and_every_file_in_it_are_private_whatever_the_umask() {
    let dir = scratch_dir("modes");
    let data = dir.join("db");
    // A symlink planted where the admin token goes, pointing at a file of
    // someone else's: kagi must replace the link, not write through it.
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    let victim = dir.join("victim");
    std::fs::write(&victim, "not kagi's").unwrap();
    std::os::unix::fs::symlink(&victim, data.join("admin.token")).unwrap();
    let config = lab_config(&dir, &data);
    let args = ["serve".as_ref(), "--config".as_ref(), config.as_os_str()];
    let (mut kagi, addr) = run_kagi(&args, Some(0o000), None);
    // Some work, so that sled writes its files.
    let mut c = Client::new(addr);
    kaigo::start_recovery(&mut c, OSAKA_OFFICE, OSAKA_MAIL);
    kagi.kill();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "not kagi's");
    let token = data.join("admin.token").symlink_metadata().unwrap();
    assert!(token.is_file(), "the link was replaced by a file");
    assert_eq!(
        std::fs::metadata(&data).unwrap().mode() & 0o777,
        0o700,
        "the data directory"
    );
    let all = modes(&data);
    assert!(all.len() >= 4, "{all:?}");
    for (path, mode) in all {
        let want = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode, want, "{}", path.display());
    }
    // A data directory made by hand, open to others, stops serve with the
    // command that mends it.
    let open = dir.join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = lab_config(&dir, &open);
    let out = kagi_cli(&["serve".as_ref(), "--config".as_ref(), config.as_os_str()]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!("chmod 700 {}", open.display())),
        "{said}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Whether `needle` is anywhere in the files under `dir` but those named.
fn found_in_files(dir: &Path, needle: &[u8], except: &[&str]) -> Vec<PathBuf> {
    modes(dir)
        .into_iter()
        .map(|(path, _)| path)
        .filter(|p| p.is_file())
        .filter(|p| !except.iter().any(|e| p.file_name() == Some(OsStr::new(e))))
        .filter(|p| {
            let bytes = std::fs::read(p).unwrap();
            bytes.windows(needle.len()).any(|w| w == needle)
        })
        .collect()
}

#[test]
fn the_database_files_alone_hold_no_live_code_or_link() {
    let dir = scratch_dir("grep");
    let data = dir.join("db");
    let config = lab_config(&dir, &data);
    let args = ["serve".as_ref(), "--config".as_ref(), config.as_os_str()];
    // serve loads no demo accounts: one demo run puts them in.
    {
        let demo = [
            "demo".as_ref(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--data-dir".as_ref(),
            data.as_os_str(),
            "--config".as_ref(),
            config.as_os_str(),
        ];
        let _ = run_kagi(&demo, None, None);
    }
    let (mut kagi, addr) = run_kagi(&args, None, None);
    // A code mailed and a reset link mailed, both still live.
    let mut k = Client::new(addr);
    kaigo::start_recovery(&mut k, OSAKA_OFFICE, OSAKA_MAIL);
    let code = wait_for_mails_at(addr, 1)[0].otp();
    let mut p = Client::new(addr);
    portal::request_link(&mut p, "demo-user", "demo-user@example.jp");
    let link_mail = &wait_for_mails_at(addr, 2)[0];
    let token = link_mail.body.split("token=").nth(1).unwrap()[..64].to_string();
    kagi.kill();
    // Not in any file of the database, as text or as the JSON that holds
    // a mail's body; only the key file could open them.
    let kept = ["kagi.key", "admin.token"];
    let json_line = format!("[ワンタイムパスワード]\\n{code}");
    let plain_line = format!("[ワンタイムパスワード]\n{code}");
    for needle in [
        json_line.as_bytes(),
        plain_line.as_bytes(),
        token.as_bytes(),
    ] {
        let hits = found_in_files(&data, needle, &kept);
        assert!(
            hits.is_empty(),
            "{:?} found in {hits:?}",
            String::from_utf8_lossy(needle)
        );
    }
    // With the key file, kagi still reads them: the link still works.
    let (_kagi, addr) = run_kagi(&args, None, None);
    let form = Client::new(addr).get(&format!("/portal/passwordreset?token={token}"));
    assert_eq!(form.status, 200);
    let _ = std::fs::remove_dir_all(dir);
}

/// The starting config `scripts/package` ships beside the systemd unit
/// reads, and passes every check `serve` makes before it starts: an
/// administrator who edits only the lines marked CHANGE starts a server.
#[test]
fn the_packaged_starting_config_is_one_serve_accepts() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/kagi.toml");
    let config = kagi::config::Config::from_file(&path).unwrap();
    config.validate_common().unwrap();
    config.validate_for_serve().unwrap();
    assert_eq!(config.http.shutdown_secs, 10);
}
