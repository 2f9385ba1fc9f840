//! [`SmallFs`]: a file system that runs out of space on demand — a tmpfs of a given size
//! mounted for one test (tests run as root), filled by [`SmallFs::fill`] until writes fail
//! with `ENOSPC`, unmounted on drop (also when the test fails).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Error;

/// A mounted tmpfs; see the module docs.
#[derive(Debug)]
pub struct SmallFs {
    path: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl SmallFs {
    /// A tmpfs of `size` (`mount`'s syntax: `64k`, `32m`) on a new temporary directory.
    pub fn new(size: &str) -> Result<SmallFs, Error> {
        let dir = tempfile::tempdir()?;
        let mut fs = SmallFs::mount_on(dir.path(), size)?;
        fs._dir = Some(dir);
        Ok(fs)
    }

    /// A tmpfs of `size` on `dir` (created if missing), e.g. a server's data dir whose parent
    /// keeps its log.
    pub fn mount_on(dir: &Path, size: &str) -> Result<SmallFs, Error> {
        std::fs::create_dir_all(dir)?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()?;
        if !status.success() {
            return Err(Error::Io(std::io::Error::other(format!(
                "mount -t tmpfs on {}: {status} (tests run as root)",
                dir.display()
            ))));
        }
        Ok(SmallFs {
            path: dir.to_path_buf(),
            _dir: None,
        })
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a file until the file system is full (to the last byte it takes); returns the
    /// file, whose removal makes room again.
    pub fn fill(&self) -> Result<PathBuf, Error> {
        let p = self.path.join("filler");
        let mut f = std::fs::File::create(&p)?;
        for chunk in [1 << 20, 64 << 10, 4 << 10, 512, 1] {
            let buf = vec![0u8; chunk];
            while f.write_all(&buf).is_ok() {}
        }
        Ok(p)
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}
