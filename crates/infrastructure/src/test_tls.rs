//! What the TLS tests need: a certificate authority of their own, a server certificate
//! it signed for `localhost` and `127.0.0.1`, and a Redis and a `PostgreSQL` with TLS on
//! free ports.

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

/// A CA, and a server certificate and key it signed, as PEM files in a folder removed
/// on drop.
pub(crate) struct Certificates {
    folder: PathBuf,
}

impl Certificates {
    /// # Panics
    /// When the certificates cannot be made or written.
    pub(crate) fn new() -> Self {
        let folder = std::env::temp_dir().join(format!("keystone-tls-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&folder).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_certificate = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let server_key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&server_key, &issuer)
            .unwrap();
        let certificates = Self { folder };
        std::fs::write(certificates.ca(), ca_certificate.pem()).unwrap();
        std::fs::write(certificates.file("server.pem"), server.pem()).unwrap();
        std::fs::write(certificates.file("server.key"), server_key.serialize_pem()).unwrap();
        certificates
    }

    fn file(&self, name: &str) -> PathBuf {
        self.folder.join(name)
    }

    /// The CA's certificate: what a client trusts to verify the server.
    pub(crate) fn ca(&self) -> PathBuf {
        self.file("ca.pem")
    }
}

impl Drop for Certificates {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

/// A `redis-server` that speaks only TLS, with a certificate signed by `certificates`'
/// CA, stopped on drop.
pub(crate) struct TlsRedis {
    pub(crate) port: u16,
    server: Child,
}

impl TlsRedis {
    /// # Panics
    /// When `redis-server` is not on the `PATH`, or does not listen within 10 seconds.
    pub(crate) fn start(certificates: &Certificates) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .unwrap();
        let path = |name: &str| certificates.file(name).display().to_string();
        let server = Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--tls-port", &port.to_string(), "--tls-auth-clients", "no"])
            .args(["--tls-cert-file", &path("server.pem")])
            .args(["--tls-key-file", &path("server.key")])
            .args(["--tls-ca-cert-file", &path("ca.pem")])
            .stdout(Stdio::null())
            .spawn()
            .expect("this test needs redis-server on the PATH");
        let redis = Self { port, server };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        redis
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// A `PostgreSQL` server of the test's own, in a temporary folder, with TLS on and a
/// certificate signed by `certificates`' CA; stopped on drop. Its binaries (`initdb`,
/// `pg_ctl`) come from the `PostgreSQL` installation of the machine. They refuse to run
/// as root, so as root they run as the `postgres` user.
pub(crate) struct TlsPostgres {
    pub(crate) port: u16,
    data: PathBuf,
    bin: PathBuf,
}

impl TlsPostgres {
    /// # Panics
    /// When no `PostgreSQL` installation is found, or the server does not start.
    pub(crate) fn start(certificates: &Certificates) -> Self {
        let bin = postgres_bin();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .unwrap();
        let data = certificates.file("data");
        std::fs::create_dir_all(&data).unwrap();
        let server = Self { port, data, bin };
        Self::own(&server.data);
        server.run(
            "initdb",
            &[
                "-D",
                &server.path(""),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
            ],
        );
        for (from, to) in [("server.pem", "server.crt"), ("server.key", "server.key")] {
            let to = server.data.join(to);
            std::fs::copy(certificates.file(from), &to).unwrap();
            // PostgreSQL refuses a key that others may read.
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
            Self::own(&to);
        }
        let options = format!(
            "-p {port} -k {data} -c listen_addresses=127.0.0.1 -c ssl=on \
             -c ssl_cert_file=server.crt -c ssl_key_file=server.key",
            data = server.path("")
        );
        server.run(
            "pg_ctl",
            &[
                "-D",
                &server.path(""),
                "-l",
                &server.path("log"),
                "-o",
                &options,
                "-w",
                "start",
            ],
        );
        server
    }

    fn path(&self, name: &str) -> String {
        self.data.join(name).display().to_string()
    }

    /// Runs one of the server's binaries, as `postgres` when this process is root.
    fn run(&self, program: &str, args: &[&str]) {
        let program = self.bin.join(program);
        let mut command = if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program);
            command
        } else {
            Command::new(&program)
        };
        let output = command.args(args).output().unwrap();
        assert!(
            output.status.success(),
            "{} failed: {}",
            program.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Hands `path` to the `postgres` user when this process is root.
    fn own(path: &std::path::Path) {
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(path)
                .status()
                .unwrap();
            assert!(status.success(), "chown {}", path.display());
        }
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        let data = self.path("");
        self.run("pg_ctl", &["-D", &data, "-m", "immediate", "stop"]);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.trim_ascii() == b"0")
}

/// The folder of `initdb` and `pg_ctl`: on the `PATH`, or the newest
/// `/usr/lib/postgresql/<version>/bin` (Debian's layout).
fn postgres_bin() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).find(|folder| folder.join("initdb").is_file())
    });
    on_path
        .or_else(|| {
            let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
                .ok()?
                .flatten()
                .map(|entry| entry.path().join("bin"))
                .filter(|bin| bin.join("initdb").is_file())
                .collect();
            versions.sort();
            versions.pop()
        })
        .expect("this test needs PostgreSQL's initdb and pg_ctl")
}
