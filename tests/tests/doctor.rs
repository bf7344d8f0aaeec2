//! `huizhen doctor` (issue 17) on a machine set up wrongly on purpose: a data directory others
//! can read, an expired certificate, a Redis without persistence, a full disk, a TURN port
//! held by another program. Each is named with its fix,
//! in Chinese and in English, and the exit status says it failed; the same machine set up
//! right passes.
#![allow(clippy::unwrap_used)]

use huizhen_tests::{RedisServer, huizhen_binary};

fn doctor(config: &std::path::Path, data: &std::path::Path, lang: &str) -> (i32, String) {
    let out = std::process::Command::new(huizhen_binary())
        .args(["--config"])
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .args(["doctor", "--lang", lang])
        .env("HUIZHEN_MEDIA__UDP_PORT", "0")
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

fn cert(dir: &std::path::Path, expired: bool) -> (std::path::PathBuf, std::path::PathBuf) {
    let mut params = rcgen::CertificateParams::new(vec!["consult.hospital.test".to_owned()]).unwrap();
    if expired {
        params.not_before = rcgen::date_time_ymd(2019, 1, 1);
        params.not_after = rcgen::date_time_ymd(2020, 1, 1);
    }
    let key = rcgen::KeyPair::generate().unwrap();
    let made = params.self_signed(&key).unwrap();
    let (c, k) = (dir.join(format!("cert-{expired}.pem")), dir.join(format!("key-{expired}.pem")));
    std::fs::write(&c, made.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

#[test]
fn what_is_wrong_is_named_with_its_fix_and_fails_the_exit_status() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let redis = RedisServer::start().unwrap();
    let (c, k) = cert(dir.path(), true);
    let config = dir.path().join("huizhen.toml");
    let toml = |c: &std::path::Path, k: &std::path::Path| {
        format!(
            "store = \"{}\"\n[tls]\nmode = \"files\"\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
            redis.url(),
            c.display(),
            k.display()
        )
    };
    std::fs::write(&config, toml(&c, &k)).unwrap();

    let (code, zh) = doctor(&config, &data, "zh-CN");
    assert_eq!(code, 1, "{zh}");
    assert!(zh.contains("✗ 数据目录权限") && zh.contains("chmod 700"), "{zh}");
    assert!(zh.contains("✗ 证书") && zh.contains("已过期") && zh.contains("consult.hospital.test"), "{zh}");
    assert!(zh.contains("✗ Redis 持久化") && zh.contains("appendonly yes"), "{zh}");
    assert!(zh.contains("✓ Redis") && zh.contains("时钟"), "{zh}");
    let (code, en) = doctor(&config, &data, "en");
    assert_eq!(code, 1);
    assert!(en.contains("✗ certificate") && en.contains("has expired"), "{en}");
    assert!(en.contains("failed"), "{en}");

    // Put right (but for Redis, which is the test's own): only that one still fails.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    let (c, k) = cert(dir.path(), false);
    std::fs::write(&config, toml(&c, &k)).unwrap();
    let (code, zh) = doctor(&config, &data, "zh-CN");
    assert!(zh.contains("✓ 数据目录权限") && zh.contains("✓ 证书"), "{zh}");
    assert_eq!(code, 1, "the Redis without persistence still fails");
    let persistent = RedisServer::start_persistent().unwrap();
    std::fs::write(&config, toml(&c, &k).replace(&redis.url(), &persistent.url())).unwrap();
    let (code, zh) = doctor(&config, &data, "zh-CN");
    assert!(zh.contains("✓ Redis 持久化"), "{zh}");
    assert_eq!(code, 0, "{zh}");

    // The built-in TURN server's port held by another program (a coturn left running): named,
    // with the firewall rule for its ports.
    let held = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let turn = format!(
        "[turn]\nenabled = true\nlisten = \"{}\"\nrelay_port_min = 49160\nrelay_port_max = 49200\n",
        held.local_addr().unwrap()
    );
    std::fs::write(&config, toml(&c, &k).replace(&redis.url(), &persistent.url()) + &turn).unwrap();
    let (_, zh) = doctor(&config, &data, "zh-CN");
    assert!(zh.contains("! TURN 端口") && zh.contains("已被占用") && zh.contains("49160-49200/udp"), "{zh}");
    drop(held);

    // A configuration that does not load is the first thing said.
    std::fs::write(&config, "listen = \"nowhere\"\n").unwrap();
    let (code, en) = doctor(&config, &data, "en");
    assert_eq!(code, 1);
    assert!(en.starts_with("✗ configuration"), "{en}");
}

/// A full disk for recordings: a 1 MiB file system of its own (a tmpfs in a user and mount
/// namespace: `unshare -rm`, no privileges needed) as `recording.dir` is named as a failure.
#[test]
fn a_full_recordings_disk_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (data, small) = (dir.path().join("data"), dir.path().join("recordings"));
    for d in [&data, &small] {
        std::fs::create_dir(d).unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    let config = dir.path().join("huizhen.toml");
    std::fs::write(&config, format!("[recording]\ndir = \"{}\"\n", small.display())).unwrap();
    let script = format!(
        "mount -t tmpfs -o size=1m tmpfs '{}' && exec '{}' --config '{}' --data-dir '{}' doctor --lang en",
        small.display(),
        huizhen_binary().display(),
        config.display(),
        data.display()
    );
    let out = std::process::Command::new("unshare").args(["-rm", "sh", "-c", &script]).output().unwrap();
    let en = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{en} {}", String::from_utf8_lossy(&out.stderr));
    assert!(en.contains("✗ disk for recordings") && en.contains("0 GB free"), "{en}");
    assert!(en.contains("recording.dir on a larger disk"), "{en}");
}
