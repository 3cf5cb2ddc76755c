//! A TCP proxy that can take a server away and bring it back, like a database or a
//! Redis that restarts: while down it drops every connection it carries and closes new
//! ones as soon as they arrive.

use std::net::{SocketAddr, ToSocketAddrs};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    pub port: u16,
    up: watch::Sender<bool>,
}

impl Proxy {
    /// Starts forwarding to `target` on a free port of 127.0.0.1.
    ///
    /// # Panics
    /// When no port can be bound.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (up, watching) = watch::channel(true);
        actix_web::rt::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !*watching.borrow() {
                    continue;
                }
                let mut down = watching.clone();
                actix_web::rt::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = down.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Self { port, up }
    }

    /// Starts a proxy to the server of `url` (`scheme://[user@]host[:port]/...`) and
    /// returns it with the same URL pointed at the proxy.
    ///
    /// # Panics
    /// When the URL has no resolvable host.
    pub async fn in_front_of(url: &str, default_port: u16) -> (Self, String) {
        let (before, host, after) = around_host(url);
        let host = if host.contains(':') {
            host.to_owned()
        } else {
            format!("{host}:{default_port}")
        };
        let target = host
            .to_socket_addrs()
            .unwrap()
            .next()
            .expect("a TCP address");
        let proxy = Self::start(target).await;
        let url = format!("{before}127.0.0.1:{}{after}", proxy.port);
        (proxy, url)
    }

    pub fn go_down(&self) {
        self.up.send_replace(false);
    }

    pub fn come_back(&self) {
        self.up.send_replace(true);
    }
}

/// Splits a `scheme://user@host:port/db` URL into what comes before the host, the host
/// and port, and what comes after.
fn around_host(url: &str) -> (&str, &str, &str) {
    let authority = url.find("://").expect("a URL") + 3;
    let path = url[authority..]
        .find('/')
        .map_or(url.len(), |at| authority + at);
    let host = url[authority..path]
        .rfind('@')
        .map_or(authority, |at| authority + at + 1);
    (&url[..host], &url[host..path], &url[path..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_is_found_with_and_without_credentials_port_and_path() {
        assert_eq!(
            around_host("postgres://postgres@127.0.0.1:5432/test"),
            ("postgres://postgres@", "127.0.0.1:5432", "/test")
        );
        assert_eq!(
            around_host("redis://127.0.0.1:6379"),
            ("redis://", "127.0.0.1:6379", "")
        );
        assert_eq!(
            around_host("redis://:secret@cache/0"),
            ("redis://:secret@", "cache", "/0")
        );
    }
}
