//! A real registry for tests: Debian's `docker-registry` (distribution 2.8)
//! on a free port of 127.0.0.1, clients of it, and what the registry tests
//! share.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chunkah::digest::Digest;
use chunkah::registry::{Client, ClientConfig};

use super::{require_tool, TempDir};

/// A `docker-registry serve` on a free port of 127.0.0.1, killed on drop.
pub struct Registry {
    pub child: Child,
    pub port: u16,
    pub dir: TempDir,
}

impl Registry {
    pub fn start(name: &str) -> Self {
        Registry::start_with(name, |_| String::new())
    }

    /// A registry whose configuration ends with `extra(dir)`: indented
    /// lines add to the `http` section, others start sections.
    pub fn start_with(name: &str, extra: impl FnOnce(&Path) -> String) -> Self {
        let bin = require_tool("docker-registry", "docker-registry");
        let dir = TempDir::new(name);
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    \
                 rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n{}",
                dir.path().join("storage").display(),
                extra(dir.path())
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting docker-registry");
        let mut registry = Registry { child, port, dir };
        registry.wait_ready();
        registry
    }

    /// Polls `GET /v2/` until it answers (200, or 401 with auth).
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "docker-registry exited with {status}: {}",
                    std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
                );
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut answer = String::new();
                // A TLS registry answers plain HTTP with a 400.
                if s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n").is_ok()
                    && s.read_to_string(&mut answer).is_ok()
                    && answer.starts_with("HTTP/1.")
                {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn client(&self, repository: &str) -> Client {
        self.client_with(repository, ClientConfig::default())
    }

    pub fn client_with(&self, repository: &str, config: ClientConfig) -> Client {
        let config = ClientConfig {
            tls_verify: config.tls_verify && config.ca_file.is_some(),
            backoff: Duration::from_millis(10),
            ..config
        };
        Client::new(&self.host(), repository, config).unwrap()
    }

    /// The file holding a blob in the registry's storage.
    pub fn blob_data(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(&hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn skopeo() -> PathBuf {
    require_tool("skopeo", "skopeo")
}

/// Pseudo-random bytes (the chunker's golden-vector generator).
pub fn noise(len: usize) -> Vec<u8> {
    chunkah::chunker::golden_input(0x9e37_79b9_7f4a_7c15, len)
}
