//! The files a configuration is read from, and a digest of their content exactly as read, so
//! the reloader can tell whether the files on disk still hold what is in force.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::Error;

/// Digest of the content of a list of files.
pub type Fingerprint = [u8; 32];

/// The files read so far, and the digest of what was read.
#[derive(Default)]
pub struct Sources {
    files: Vec<PathBuf>,
    digest: Sha256,
}

fn absorb(h: &mut Sha256, path: &Path, bytes: Option<&[u8]>) {
    let name = path.as_os_str().as_encoded_bytes();
    h.update((name.len() as u64).to_be_bytes());
    h.update(name);
    match bytes {
        Some(b) => {
            h.update([1]);
            h.update((b.len() as u64).to_be_bytes());
            h.update(b);
        }
        None => h.update([0]),
    }
}

impl Sources {
    /// Reads `file`, named by `key` of the config file `config`, and records it.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key and the file when it cannot be read.
    pub fn read(&mut self, config: &Path, key: &str, file: PathBuf) -> Result<Vec<u8>, Error> {
        let bytes = std::fs::read(&file)
            .map_err(|e| Error::config(config, format!("{key}: {}: {e}", file.display())))?;
        self.record(file, &bytes);
        Ok(bytes)
    }

    /// Records a file read elsewhere.
    pub fn record(&mut self, file: PathBuf, bytes: &[u8]) {
        absorb(&mut self.digest, &file, Some(bytes));
        self.files.push(file);
    }

    /// The files, in reading order, and the digest of their content as read.
    pub fn finish(self) -> (Vec<PathBuf>, Fingerprint) {
        (self.files, self.digest.finalize().into())
    }
}

/// The digest of `files` as they are on disk now (a missing file counts as a distinct state);
/// equal to the loaded one exactly when nothing changed.
pub fn fingerprint(files: &[PathBuf]) -> Fingerprint {
    let mut h = Sha256::new();
    for f in files {
        absorb(&mut h, f, std::fs::read(f).ok().as_deref());
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_files_until_one_changes() -> Result<(), Error> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, "one").map_err(|e| Error::io(&a, e))?;
        std::fs::write(&b, "two").map_err(|e| Error::io(&b, e))?;
        let mut s = Sources::default();
        s.read(&a, "x", a.clone())?;
        s.read(&a, "y", b.clone())?;
        let (files, loaded) = s.finish();
        assert_eq!(fingerprint(&files), loaded);
        std::fs::write(&b, "TWO").map_err(|e| Error::io(&b, e))?;
        assert_ne!(fingerprint(&files), loaded);
        std::fs::remove_file(&b).map_err(|e| Error::io(&b, e))?;
        assert_ne!(fingerprint(&files), loaded);
        Ok(())
    }
}
