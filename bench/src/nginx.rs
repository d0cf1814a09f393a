//! nginx (Debian's `nginx-light`), the static-file limit of the pull rows: one process on a free
//! loopback port serving a folder of files with `sendfile on`, everything it writes kept in its
//! own temporary folder. nginx's defaults otherwise (`tcp_nopush off`, 2 MiB sendfile chunks);
//! Debian's packaged configuration turns `tcp_nopush` on, which is slower on loopback.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use crate::content::BigBlob;
use crate::daemon::{free_addr, Daemon};
use crate::error::BenchError;

/// nginx serving files; dropping it stops nginx and removes the files.
pub struct Nginx {
    daemon: Daemon,
    /// Kept last so the folder outlives the process using it.
    _dir: tempfile::TempDir,
}

impl Nginx {
    /// Writes each blob to a file named after its digest's hex and starts `program` on them.
    ///
    /// # Errors
    /// A file could not be written or nginx did not come up.
    pub async fn start(program: &Path, blobs: &[&BigBlob]) -> Result<Nginx, BenchError> {
        let dir = tempfile::Builder::new()
            .prefix("berth-bench-nginx.")
            .tempdir()
            .map_err(BenchError::io("create a temporary folder"))?;
        let root = dir.path();
        let www = root.join("www");
        let temp = root.join("temp");
        for folder in [&www, &temp] {
            std::fs::create_dir(folder)
                .map_err(BenchError::io(format!("create {}", folder.display())))?;
        }
        for blob in blobs {
            write_blob(&www.join(file_name(&blob.digest)), blob)?;
        }
        let addr = free_addr()?;
        let conf = root.join("nginx.conf");
        let error_log = root.join("error.log");
        std::fs::write(&conf, config(addr, root, &www, &temp, &error_log))
            .map_err(BenchError::io(format!("write {}", conf.display())))?;
        let mut cmd = Command::new(program);
        // `-e` before the configuration is read: nginx opens its compiled-in log otherwise.
        cmd.arg("-e").arg(&error_log).arg("-c").arg(&conf);
        let mut daemon = Daemon::spawn("nginx", cmd, addr, &root.join("nginx.out"))?;
        daemon.wait_ready("/", |_| true).await?;
        Ok(Nginx { daemon, _dir: dir })
    }

    /// The URL of the blob with `digest`.
    pub fn url(&self, digest: &str) -> String {
        format!("http://{}/{}", self.daemon.addr, file_name(digest))
    }
}

/// The file a blob is served as: its digest's hex.
fn file_name(digest: &str) -> &str {
    digest.rsplit(':').next().unwrap_or(digest)
}

fn write_blob(path: &Path, blob: &BigBlob) -> Result<(), BenchError> {
    let what = format!("write {}", path.display());
    let mut file = std::fs::File::create(path).map_err(BenchError::io(what.clone()))?;
    for part in &blob.parts {
        file.write_all(part).map_err(BenchError::io(what.clone()))?;
    }
    Ok(())
}

/// One process (no master, so no change of user: the temporary folder is the caller's alone),
/// no access log, `sendfile on`, every temporary path inside the folder.
fn config(addr: SocketAddr, root: &Path, www: &Path, temp: &Path, error_log: &Path) -> String {
    let temp = temp.display();
    let temp_paths: String = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
        .iter()
        .map(|kind| format!("  {kind}_temp_path {temp};\n"))
        .collect();
    format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {pid};\nerror_log {log};\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  sendfile on;\n{temp_paths}  \
         server {{ listen {addr}; root {www}; }}\n}}\n",
        pid = root.join("nginx.pid").display(),
        log = error_log.display(),
        www = www.display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_the_folder_with_sendfile_and_keeps_its_files_inside_the_folder() {
        let addr: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let root = Path::new("/tmp/x");
        let text = config(
            addr,
            root,
            &root.join("www"),
            &root.join("temp"),
            &root.join("error.log"),
        );
        assert!(text.contains("sendfile on;"), "{text}");
        assert!(
            text.contains("listen 127.0.0.1:8080; root /tmp/x/www;"),
            "{text}"
        );
        assert!(text.contains("master_process off;"), "{text}");
        assert!(text.contains("  uwsgi_temp_path /tmp/x/temp;\n"), "{text}");
        assert!(text.contains("pid /tmp/x/nginx.pid;"), "{text}");
        assert_eq!(file_name("sha256:abcd"), "abcd");
    }
}
