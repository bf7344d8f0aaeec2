//! Certificates from an ACME CA (issue 17), against Debian's `pebble` (Let's Encrypt's ACME
//! test server) on loopback: its DNS answers every name with 127.0.0.1 (`pebble-challtestsrv`)
//! and its HTTP-01 check comes to the server's plain-HTTP listener. The server gets a
//! certificate for its name and serves it, and asks for a new one when told to (SIGHUP).
#![allow(clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use huizhen_tests::{TestServer, eventually, free_port};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NAME: &str = "hz.hospital.test";
const WAIT: Duration = Duration::from_secs(60);

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tls_client(root_pem: &[u8]) -> tokio_rustls::TlsConnector {
    huizhen_tests::tls_connector(root_pem)
}

/// The certificate the server presents for `NAME`, if it verifies against `root_pem`.
async fn served(addr: std::net::SocketAddr, root_pem: &[u8]) -> Option<Vec<u8>> {
    let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
    let tls = tls_client(root_pem).connect(ServerName::try_from(NAME).unwrap(), tcp).await.ok()?;
    Some(tls.get_ref().1.peer_certificates()?.first()?.as_ref().to_vec())
}

/// GET over HTTPS trusting `root_pem`: the body.
async fn https_body(addr: std::net::SocketAddr, root_pem: &[u8], name: &str, path: &str) -> String {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut tls = tls_client(root_pem).connect(ServerName::try_from(name.to_owned()).unwrap(), tcp).await.unwrap();
    tls.write_all(format!("GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default()
}

async fn plain_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: {NAME}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tcp.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_is_issued_by_the_ca_served_and_renewed_when_forced() {
    assert!(
        Command::new("pebble").arg("-h").stderr(Stdio::null()).status().is_ok(),
        "pebble is not installed (the test script installs it: scripts/test.sh)"
    );
    let dir = tempfile::tempdir().unwrap();
    // Pebble's own HTTPS (its directory): a certificate made here, the client's ACME root.
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let (pebble_cert, pebble_key) = (dir.path().join("pebble.pem"), dir.path().join("pebble.key"));
    std::fs::write(&pebble_cert, made.cert.pem()).unwrap();
    std::fs::write(&pebble_key, made.signing_key.serialize_pem()).unwrap();
    let (acme_port, mgmt_port, dns_port, http_port, alpn_port, challtest_mgmt) =
        (free_port(), free_port(), free_port(), free_port(), free_port(), free_port());
    let config = serde_json::json!({ "pebble": {
        "listenAddress": format!("127.0.0.1:{acme_port}"),
        "managementListenAddress": format!("127.0.0.1:{mgmt_port}"),
        "certificate": pebble_cert, "privateKey": pebble_key,
        // Where its HTTP-01 check goes: the server's plain-HTTP listener.
        "httpPort": http_port, "tlsPort": alpn_port,
        "ocspResponderURL": "", "externalAccountBindingRequired": false,
    }});
    let config_path = dir.path().join("pebble.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let _dns = Killed(
        Command::new("pebble-challtestsrv")
            .args(["-dns01", &format!("127.0.0.1:{dns_port}"), "-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args([
                "-management",
                &format!("127.0.0.1:{challtest_mgmt}"),
                "-defaultIPv4",
                "127.0.0.1",
                "-defaultIPv6",
                "",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let _pebble = Killed(
        Command::new("pebble")
            .arg("-config")
            .arg(&config_path)
            .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
            // No random waits before its checks, and no nonces refused on purpose.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    eventually("pebble listens", WAIT, || async {
        tokio::net::TcpStream::connect(("127.0.0.1", acme_port)).await.is_ok()
    })
    .await;

    let data = tempfile::tempdir().unwrap();
    let mut c = huizhen_tests::test_config(data.path());
    c.tls.mode = "acme".into();
    c.tls.names = vec![NAME.into()];
    c.tls.redirect_listen = format!("127.0.0.1:{http_port}");
    c.tls.acme_directory = format!("https://127.0.0.1:{acme_port}/dir");
    c.tls.acme_ca_root = pebble_cert.clone();
    c.tls.acme_contact = vec!["it@hospital.test".into()];
    let srv = TestServer::start_config(c).await;

    // The CA's roots (its management API), to check what the server presents.
    let plain_root = made.cert.pem();
    let mgmt: std::net::SocketAddr = format!("127.0.0.1:{mgmt_port}").parse().unwrap();
    let ca_root = https_body(mgmt, plain_root.as_bytes(), "127.0.0.1", "/roots/0").await;
    assert!(ca_root.contains("BEGIN CERTIFICATE"), "pebble's root: {ca_root}");
    eventually("the server presents a certificate the CA issued for its name", WAIT, || {
        let (root, addr) = (ca_root.clone(), srv.addr);
        async move { served(addr, root.as_bytes()).await.is_some() }
    })
    .await;
    let first = served(srv.addr, ca_root.as_bytes()).await.unwrap();
    let days = huizhen::acme::days_left(&huizhen::acme::cert_path(data.path())).unwrap();
    assert!(days > 30, "a fresh certificate: {days} days left");
    // The plain listener answers no unknown challenge, and sends the rest to HTTPS.
    let plain: std::net::SocketAddr = format!("127.0.0.1:{http_port}").parse().unwrap();
    assert!(plain_get(plain, "/.well-known/acme-challenge/nothing").await.starts_with("HTTP/1.1 404"));
    assert!(plain_get(plain, "/").await.starts_with("HTTP/1.1 308"));

    // Forced (SIGHUP): a new certificate, served to new connections.
    srv.state.acme_renew.as_ref().unwrap().notify_one();
    eventually("a renewed certificate is served", WAIT, || {
        let (root, first, addr) = (ca_root.clone(), first.clone(), srv.addr);
        async move { served(addr, root.as_bytes()).await.is_some_and(|now| now != first) }
    })
    .await;
    srv.stop().await;
}
