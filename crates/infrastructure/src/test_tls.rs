//! What the TLS tests need: a certificate authority of their own, a server certificate
//! it signed for `localhost` and `127.0.0.1`, and a Redis with TLS on a free port.

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
