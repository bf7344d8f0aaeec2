//! HTTPS in the server (issue 17): a self-signed trial certificate, made once for its names and
//! served; certificate files with HSTS; the plain-HTTP redirect; a connection that never
//! completes its handshake is let go after the header deadline. A real TLS client (rustls)
//! that trusts exactly the server's certificate.
#![allow(clippy::unwrap_used)]

use huizhen_tests::TestServer;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// GET `path` over TLS trusting only `cert_pem`, as `name`; the whole answer's text.
async fn https_get(addr: std::net::SocketAddr, cert_pem: &[u8], name: &str, path: &str) -> String {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut tls = huizhen_tests::tls_connector(cert_pem)
        .connect(ServerName::try_from(name.to_owned()).unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(format!("GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn a_trial_certificate_is_served_and_a_silent_handshake_is_let_go() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = huizhen_tests::test_config(dir.path());
    config.tls.mode = "self-signed".into();
    config.tls.names = vec!["huizhen.test".into(), "127.0.0.1".into()];
    config.limits.http_header_timeout_secs = 1;
    let srv = TestServer::start_config(config).await;
    let pem = std::fs::read(dir.path().join("tls/self-signed.pem")).unwrap();
    let answer = https_get(srv.addr, &pem, "huizhen.test", "/healthz").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(!answer.to_ascii_lowercase().contains("strict-transport-security"), "no HSTS for a trial certificate");
    // The app itself comes over HTTPS too.
    assert!(https_get(srv.addr, &pem, "huizhen.test", "/").await.contains("<html"), "the page");
    // Plain HTTP on the TLS port gets no HTTP answer: a TLS alert record (0x15) at most.
    let mut plain = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    plain.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 64];
    let n = plain.read(&mut buf).await.unwrap_or(0);
    assert!(n == 0 || buf[0] == 0x15, "{:?}", &buf[..n]);
    // A connection that says nothing is closed after the header deadline (1 s here).
    let mut silent = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), silent.read(&mut buf)).await.unwrap().unwrap_or(0);
    assert_eq!(n, 0, "closed without a word");
    srv.stop().await;
}

#[tokio::test]
async fn certificate_files_are_served_with_hsts_and_plain_http_is_redirected() {
    let dir = tempfile::tempdir().unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["consult.hospital.test".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let redirect_port = huizhen_tests::free_port();
    let mut config = huizhen_tests::test_config(dir.path());
    config.tls.mode = "files".into();
    config.tls.cert_file = cert.clone();
    config.tls.key_file = key;
    config.tls.redirect_listen = format!("127.0.0.1:{redirect_port}");
    let srv = TestServer::start_config(config).await;
    let answer = https_get(srv.addr, made.cert.pem().as_bytes(), "consult.hospital.test", "/healthz").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("strict-transport-security: max-age=31536000"), "{answer}");

    let mut plain = tokio::net::TcpStream::connect(("127.0.0.1", redirect_port)).await.unwrap();
    plain
        .write_all(b"GET /#/c/1?x=2 HTTP/1.1\r\nHost: consult.hospital.test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    plain.read_to_end(&mut out).await.unwrap();
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 308"), "{out}");
    let want = format!("location: https://consult.hospital.test:{}/", srv.addr.port());
    assert!(out.to_ascii_lowercase().contains(&want), "{out}");
    srv.stop().await;
}
