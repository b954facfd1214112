//! Which version of the web config file and of the files it names (certificate, key,
//! client CA) was loaded, so that a change to any of them triggers a reload. A Secret
//! mounted by the kubelet is replaced by an atomic swap of a `..data` symlink: the paths
//! stay, but they lead to new files (new inode, usually a new mtime). Comparing each
//! file's device, inode, size and mtime, symlinks followed, sees such a swap as well as an
//! in-place rewrite.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What identifies one version of a file; `None` when it cannot be read.
type Identity = Option<(u64, u64, u64, i64, i64)>;

/// The identities of the config file and the files it names, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStamp(Vec<Identity>);

impl FileStamp {
    /// Looks at `config` and then at `files` (symlinks followed).
    pub fn of(config: &Path, files: &[PathBuf]) -> FileStamp {
        let identity = |path: &Path| -> Identity {
            let m = std::fs::metadata(path).ok()?;
            Some((m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
        };
        FileStamp(
            std::iter::once(config)
                .chain(files.iter().map(PathBuf::as_path))
                .map(identity)
                .collect(),
        )
    }
}

/// How often [`load_stamped`] loads again when the config names other files than guessed.
const MAX_ATTEMPTS: usize = 3;

/// Loads with `load` and returns the result with a stamp taken *before* the files were
/// read, so that a change landing while they are read is seen at the next check (a stamp
/// taken after could describe files newer than the ones loaded). `guess` is the list of
/// files the config is expected to name (the previous version's); when the loaded version
/// names others, it is loaded again with those.
///
/// # Errors
/// Whatever `load` returns.
pub fn load_stamped<T, E>(
    config: &Path,
    guess: &[PathBuf],
    load: impl Fn() -> Result<T, E>,
    files_of: impl Fn(&T) -> &[PathBuf],
) -> Result<(FileStamp, T), E> {
    let mut files = guess.to_vec();
    let mut attempt = 1;
    loop {
        let stamp = FileStamp::of(config, &files);
        let loaded = load()?;
        if files_of(&loaded) == files.as_slice() || attempt == MAX_ATTEMPTS {
            return Ok((stamp, loaded));
        }
        files = files_of(&loaded).to_vec();
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::cell::Cell;
    use std::os::unix::fs::symlink;

    /// A fresh directory of this test's own (removed first if a previous run left it).
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pgw-stamp-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A directory laid out as the kubelet mounts a Secret: `name -> ..data/name`,
    /// `..data -> <version dir>`.
    fn kubelet_dir(root: &Path, version: &str, content: &str) {
        let dir = root.join(version);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("tls.crt"), content).unwrap();
        let tmp = root.join("..data_tmp");
        symlink(version, &tmp).unwrap();
        std::fs::rename(&tmp, root.join("..data")).unwrap();
        if !root.join("tls.crt").exists() {
            symlink("..data/tls.crt", root.join("tls.crt")).unwrap();
        }
    }

    #[test]
    fn a_symlink_swap_changes_the_stamp_even_with_the_same_size_and_time() {
        let root = scratch("swap");
        let config = root.join("web.yml");
        std::fs::write(&config, "").unwrap();
        kubelet_dir(&root, "..v1", "AAAA");
        let files = vec![root.join("tls.crt")];
        let before = FileStamp::of(&config, &files);
        assert_eq!(
            before,
            FileStamp::of(&config, &files),
            "stable while nothing changes"
        );
        kubelet_dir(&root, "..v2", "BBBB");
        // The swap keeps size; the new file is a new inode whatever its mtime.
        assert_ne!(before, FileStamp::of(&config, &files));
    }

    #[test]
    fn a_missing_file_is_part_of_the_stamp() {
        let root = scratch("missing");
        let config = root.join("web.yml");
        let cert = root.join("cert.pem");
        let missing = FileStamp::of(&config, std::slice::from_ref(&cert));
        std::fs::write(&cert, "x").unwrap();
        assert_ne!(missing, FileStamp::of(&config, &[cert]));
    }

    #[test]
    fn loads_again_when_the_config_names_other_files() {
        let root = scratch("again");
        let config = root.join("web.yml");
        let cert = root.join("cert.pem");
        std::fs::write(&config, "").unwrap();
        std::fs::write(&cert, "x").unwrap();
        let loads = Cell::new(0);
        let named = vec![cert.clone()];
        let (stamp, _) = load_stamped(
            &config,
            &[],
            || {
                loads.set(loads.get() + 1);
                Ok::<_, ()>(named.clone())
            },
            |files| files.as_slice(),
        )
        .unwrap();
        assert_eq!(loads.get(), 2, "the first guess named no files");
        assert_eq!(stamp, FileStamp::of(&config, &[cert]));
    }

    #[test]
    fn errors_pass_through() {
        let root = scratch("errors");
        let result = load_stamped(
            &root.join("web.yml"),
            &[],
            || Err::<Vec<PathBuf>, _>("bad"),
            |files| files.as_slice(),
        );
        assert_eq!(result.unwrap_err(), "bad");
    }
}
