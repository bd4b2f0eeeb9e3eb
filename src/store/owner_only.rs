//! Files and directories only the account running semdock may read: the data directory holds
//! the token signing key and password hashes (in `meta.redb`), and backups hold the same.
//!
//! Directories are created 0700 and files 0600 whatever the umask (a umask can only take
//! bits away). On Windows the data directory under `ProgramData` gets an ACL that grants
//! only `SYSTEM` and `Administrators` (inherited by everything created inside).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;

/// Creates `dir` and its missing parents, each new one readable by the owner only. An
/// existing directory keeps its mode (a package may have given it to a group).
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    #[cfg(windows)]
    restrict_windows_dir(dir);
    Ok(())
}

/// Makes an existing data directory private where the platform needs it: on Windows the
/// directory an installer created under `ProgramData` inherits an ACL that lets every user
/// read it, so it gets the `SYSTEM`/`Administrators` ACL at each start. On Unix an existing
/// directory keeps its mode (a package may share it with a group on purpose).
pub fn restrict_dir(dir: &Path) {
    #[cfg(windows)]
    restrict_windows_dir(dir);
    #[cfg(not(windows))]
    let _ = dir;
}

/// Options that create a file readable by the owner only.
#[must_use]
#[cfg_attr(not(unix), allow(unused_mut))]
pub fn options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Creates a new file (failing if it exists), readable by the owner only.
pub fn create_new(path: &Path) -> io::Result<File> {
    options().write(true).create_new(true).open(path)
}

/// Makes an existing file readable by the owner only (a file another program created, such
/// as the database, or one an older version left 0644).
pub fn restrict(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Replaces the inherited ACL of a new directory with one granting full control to
/// `SYSTEM` and `Administrators` only, inherited by what is created inside. `icacls` ships
/// with every Windows; a failure is logged, not fatal (the directory still works).
#[cfg(windows)]
fn restrict_windows_dir(dir: &Path) {
    let status = std::process::Command::new("icacls")
        .arg(dir)
        .args([
            "/inheritance:r",
            "/grant:r",
            "*S-1-5-18:(OI)(CI)F",
            "/grant:r",
            "*S-1-5-32-544:(OI)(CI)F",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    if !status.is_ok_and(|s| s.success()) {
        tracing::warn!(dir = %dir.display(), "could not restrict the directory's ACL to SYSTEM and Administrators");
    }
}
