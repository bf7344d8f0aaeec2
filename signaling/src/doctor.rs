//! `huizhen doctor` (issue 17): what goes wrong in the field, checked on the machine, each
//! finding said plainly with how to fix it, in Chinese or English. A county hospital's one IT
//! person runs it before calling anyone.
//!
//! Each check is a function of the configuration and the machine; the command prints the
//! findings and exits non-zero when one fails.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use crate::config::Config;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Pass,
    Warn,
    Fail,
}

/// One finding: what was checked, what was found, and what to do (empty when nothing).
#[derive(Clone, Debug)]
pub struct Finding {
    pub level: Level,
    pub what: String,
    pub found: String,
    pub fix: String,
}

/// The words of one language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    /// `zh-CN` unless the environment asks for English (`LANG=en_…`).
    pub fn from_env(flag: Option<&str>) -> Lang {
        let v = flag.map(str::to_owned).or_else(|| std::env::var("LANG").ok()).unwrap_or_default();
        if v.starts_with("en") { Lang::En } else { Lang::Zh }
    }
}

struct Say {
    lang: Lang,
}

impl Say {
    fn t<'a>(&self, zh: &'a str, en: &'a str) -> &'a str {
        if self.lang == Lang::Zh { zh } else { en }
    }
}

fn finding(level: Level, what: &str, found: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding { level, what: what.to_owned(), found: found.into(), fix: fix.into() }
}

/// Every check that needs no server running. `config_error` is the configuration's own
/// refusal, when it did not load.
pub fn run(config: Option<&Config>, config_error: Option<String>, lang: Lang) -> Vec<Finding> {
    let s = Say { lang };
    let mut out = Vec::new();
    let Some(c) = config else {
        out.push(finding(
            Level::Fail,
            s.t("配置文件", "configuration"),
            config_error.unwrap_or_default(),
            s.t(
                "按提示修改 huizhen.toml 后重新运行 huizhen doctor。",
                "Correct huizhen.toml as the message says, then run huizhen doctor again.",
            ),
        ));
        return out;
    };
    out.push(finding(Level::Pass, s.t("配置文件", "configuration"), s.t("已读取，无错误", "read, no errors"), ""));
    out.push(data_dir(c, &s));
    out.extend(secure_context(c, &s));
    out.push(disk(c, &s));
    out.push(media_ports(c, &s));
    if c.turn.enabled {
        out.push(turn_ports(c, &s));
    }
    out.push(announced(c, &s));
    out.push(ffmpeg(c, &s));
    out
}

fn data_dir(c: &Config, s: &Say) -> Finding {
    let what = s.t("数据目录权限", "data directory permissions");
    let dir = &c.data_dir;
    let Ok(meta) = std::fs::metadata(dir) else {
        return finding(
            Level::Warn,
            what,
            format!(
                "{} {}",
                dir.display(),
                s.t("不存在（首次启动时创建）", "does not exist (made at the first start)")
            ),
            "",
        );
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return finding(
                Level::Fail,
                what,
                format!("{} {:o}", dir.display(), mode),
                format!(
                    "{} chmod 700 {}",
                    s.t("其他用户可读取病历与密钥，请执行：", "other users can read records and keys; run:"),
                    dir.display()
                ),
            );
        }
        finding(Level::Pass, what, format!("{} {:o}", dir.display(), mode), "")
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        finding(Level::Pass, what, dir.display().to_string(), "")
    }
}

fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

/// Whether the browser page would be a secure context, and the certificate's state.
fn secure_context(c: &Config, s: &Say) -> Vec<Finding> {
    let what = s.t("HTTPS（摄像头与麦克风）", "HTTPS (camera and microphone)");
    let mut out = Vec::new();
    match c.tls.mode.as_str() {
        "off" if is_loopback(&c.listen) => out.push(finding(
            Level::Warn,
            what,
            format!("{} {}", s.t("明文 HTTP，仅本机监听", "plain HTTP on loopback only:"), c.listen),
            s.t(
                "若前面有 HTTPS 反向代理则无需处理；否则其他电脑的浏览器无法使用摄像头，请设置 [tls] mode = \"files\" 或 \"self-signed\"。",
                "Fine behind an HTTPS reverse proxy; otherwise browsers on other PCs get no camera: set [tls] mode = \"files\" or \"self-signed\".",
            ),
        )),
        "off" => out.push(finding(
            Level::Fail,
            what,
            format!("{} {}", s.t("明文 HTTP，对外监听", "plain HTTP on"), c.listen),
            s.t(
                "其他电脑的浏览器不会允许使用摄像头和麦克风。请设置 [tls] mode = \"files\"（医院证书）或 \"self-signed\"（试用）。",
                "Browsers on other PCs will not allow the camera and microphone. Set [tls] mode = \"files\" (the hospital's certificate) or \"self-signed\" (a trial).",
            ),
        )),
        "self-signed" => out.push(finding(
            Level::Warn,
            what,
            s.t("自签名证书（试用）", "a self-signed certificate (trial)"),
            s.t(
                "每台电脑需信任该证书（导入 data_dir/tls/self-signed.pem），正式使用请换成医院证书。",
                "Each PC must trust it (import data_dir/tls/self-signed.pem); use the hospital's certificate for real use.",
            ),
        )),
        "acme" => {
            let cert = crate::acme::cert_path(&c.data_dir);
            if crate::acme::days_left(&cert).is_some() {
                out.push(certificate(&cert, &crate::acme::key_path(&c.data_dir), s));
            } else {
                out.push(finding(
                    Level::Warn,
                    what,
                    s.t("尚未从证书颁发机构（ACME）取得证书", "no certificate from the ACME CA yet"),
                    format!(
                        "{} {}",
                        s.t(
                            "服务启动后会自动申请；证书机构需能从互联网访问本机 80 端口（tls.redirect_listen）和域名：",
                            "The server asks for one when it starts; the CA must reach port 80 here (tls.redirect_listen) for",
                        ),
                        c.tls.names.join(", ")
                    ),
                ));
            }
        }
        _ => out.push(certificate(&c.tls.cert_file, &c.tls.key_file, s)),
    }
    out
}

/// A certificate file: readable, a certificate, its validity and the names it is for.
fn certificate(cert: &Path, key: &Path, s: &Say) -> Finding {
    let what = s.t("证书", "certificate");
    let pem = match std::fs::read(cert) {
        Ok(p) => p,
        Err(e) => {
            return finding(
                Level::Fail,
                what,
                format!("{}: {e}", cert.display()),
                s.t("检查 tls.cert_file 路径与权限。", "Check tls.cert_file's path and permissions.").to_owned(),
            );
        }
    };
    if std::fs::metadata(key).is_err() {
        return finding(
            Level::Fail,
            what,
            format!("{}: {}", key.display(), s.t("无法读取私钥", "the key cannot be read")),
            s.t("检查 tls.key_file 路径与权限。", "Check tls.key_file's path and permissions.").to_owned(),
        );
    }
    use rustls::pki_types::pem::PemObject;
    let Some(Ok(der)) = rustls::pki_types::CertificateDer::pem_slice_iter(&pem).next() else {
        return finding(Level::Fail, what, format!("{}: no PEM certificate", cert.display()), "");
    };
    let Ok((_, x509)) = x509_parser::parse_x509_certificate(der.as_ref()) else {
        return finding(Level::Fail, what, format!("{}: not a valid X.509 certificate", cert.display()), "");
    };
    let names: Vec<String> = x509
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| san.value.general_names.iter().map(|n| n.to_string()).collect())
        .unwrap_or_default();
    let days = (x509.validity().not_after.timestamp() - jiff::Timestamp::now().as_second()) / 86_400;
    let found = format!("{} [{}]", cert.display(), names.join(", "));
    if days < 0 {
        finding(
            Level::Fail,
            what,
            format!("{found} {}", s.t("已过期", "has expired")),
            s.t("更换证书后执行 systemctl reload huizhen。", "Replace it, then systemctl reload huizhen.").to_owned(),
        )
    } else if days < 14 {
        finding(
            Level::Warn,
            what,
            format!("{found} {days} {}", s.t("天后过期", "days left")),
            s.t("尽快续期，然后 systemctl reload huizhen。", "Renew it soon, then systemctl reload huizhen.")
                .to_owned(),
        )
    } else {
        finding(Level::Pass, what, format!("{found} ({days} {})", s.t("天后过期", "days left")), "")
    }
}

/// Free disk where recordings go, in hours of a four-site consultation's recording.
fn disk(c: &Config, s: &Say) -> Finding {
    let what = s.t("录像磁盘空间", "disk for recordings");
    let dir = if c.recording.dir.as_os_str().is_empty() { c.data_dir.clone() } else { c.recording.dir.clone() };
    let probe =
        if dir.exists() { dir.clone() } else { dir.parent().map(Path::to_path_buf).unwrap_or_else(|| ".".into()) };
    let Ok(st) = rustix::fs::statvfs(&probe) else {
        return finding(Level::Warn, what, format!("{}: ?", probe.display()), "");
    };
    let free = st.f_bavail.saturating_mul(st.f_frsize);
    // Four sites at about 1.5 Mbit/s each, plus audio: ~2.8 GB an hour (docs/performance.md).
    const BYTES_PER_HOUR: u64 = 2_800_000_000;
    let hours = free / BYTES_PER_HOUR;
    let found = format!(
        "{} GB {} ≈ {hours} {}",
        free / 1_000_000_000,
        s.t("可用", "free"),
        s.t("小时四方会诊录像", "hours of a four-site recording")
    );
    if hours < 2 {
        finding(
            Level::Fail,
            what,
            found,
            s.t("清理空间或设置 recording.dir 到更大的磁盘。", "Free space, or set recording.dir on a larger disk."),
        )
    } else if hours < 24 {
        finding(
            Level::Warn,
            what,
            found,
            s.t("建议设置录像保留天数 recording.retention_days。", "Consider recording.retention_days."),
        )
    } else {
        finding(Level::Pass, what, found, "")
    }
}

/// The media UDP ports: free to bind (the server is not running), or held (it is).
fn media_ports(c: &Config, s: &Say) -> Finding {
    let what = s.t("媒体端口（UDP）", "media ports (UDP)");
    let m = &c.media;
    let workers =
        if m.workers == 0 { std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) } else { m.workers };
    if m.udp_port == 0 {
        return finding(
            Level::Warn,
            what,
            s.t("随机端口（udp_port = 0）", "random ports (udp_port = 0)"),
            s.t(
                "医院防火墙只能放行固定端口：请设置 media.udp_port。",
                "A hospital firewall opens fixed ports: set media.udp_port.",
            ),
        );
    }
    let last = m.udp_port.saturating_add(workers as u16 - 1);
    let ip = m.bind_ips.first().copied().unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let busy: Vec<u16> = (m.udp_port..=last).filter(|p| std::net::UdpSocket::bind((ip, *p)).is_err()).collect();
    let range = format!("{ip}:{}-{last}", m.udp_port);
    if busy.is_empty() {
        finding(
            Level::Pass,
            what,
            format!("{range} {}", s.t("可用", "free")),
            format!("{} {}-{last}/udp", s.t("防火墙需放行", "open in the firewall:"), m.udp_port),
        )
    } else {
        finding(
            Level::Warn,
            what,
            format!("{range}: {} {busy:?}", s.t("已被占用", "in use")),
            s.t(
                "若 huizhen 正在运行则正常；否则另一个程序占用了这些端口。",
                "Normal if huizhen is running; otherwise another program holds them.",
            ),
        )
    }
}

/// The built-in TURN server's listeners (UDP, TCP, TLS) and its relay range: free now (or held
/// by a running server), and the firewall rule to open them.
fn turn_ports(c: &Config, s: &Say) -> Finding {
    let what = s.t("TURN 端口", "TURN ports");
    let t = &c.turn;
    let mut busy = Vec::new();
    let mut open = vec![format!("{}/udp", t.listen.port())];
    if std::net::UdpSocket::bind(t.listen).is_err() {
        busy.push(format!("{}/udp", t.listen));
    }
    for at in [&t.listen_tcp, &t.listen_tls].into_iter().filter_map(|a| a.parse::<std::net::SocketAddr>().ok()) {
        open.push(format!("{}/tcp", at.port()));
        if std::net::TcpListener::bind(at).is_err() {
            busy.push(format!("{at}/tcp"));
        }
    }
    open.push(format!("{}-{}/udp", t.relay_port_min, t.relay_port_max));
    let rule = format!("{} {}", s.t("防火墙需放行", "open in the firewall:"), open.join(", "));
    if busy.is_empty() {
        finding(Level::Pass, what, s.t("可用", "free").to_owned(), rule)
    } else {
        finding(
            Level::Warn,
            what,
            format!("{}: {}", s.t("已被占用", "in use"), busy.join(", ")),
            format!(
                "{} {rule}",
                s.t(
                    "若 huizhen 正在运行则正常；否则另一个程序（如 coturn）占用了这些端口。",
                    "Normal if huizhen is running; otherwise another program (coturn?) holds them.",
                )
            ),
        )
    }
}

/// The address browsers are told to send media to.
fn announced(c: &Config, s: &Say) -> Finding {
    let what = s.t("对外通告地址", "announced address");
    let m = &c.media;
    let private = |ip: &IpAddr| match ip {
        IpAddr::V4(v) => v.is_private() || v.is_loopback() || v.is_link_local(),
        IpAddr::V6(v) => v.is_loopback(),
    };
    if !m.announce_ips.is_empty() {
        return finding(Level::Pass, what, format!("{:?}", m.announce_ips), "");
    }
    let bound_any = m.bind_ips.is_empty() || m.bind_ips.iter().any(IpAddr::is_unspecified);
    if bound_any || m.bind_ips.iter().all(private) {
        finding(
            Level::Warn,
            what,
            s.t("未设置 media.announce_ips", "media.announce_ips is not set"),
            s.t(
                "院外（如乡镇卫生院经公网）连入时，请把服务器的公网地址写入 media.announce_ips（1:1 NAT）。",
                "For sites that come over the internet (a township clinic), put the server's public address in media.announce_ips (1:1 NAT).",
            ),
        )
    } else {
        finding(Level::Pass, what, format!("{:?}", m.bind_ips), "")
    }
}

fn ffmpeg(c: &Config, s: &Say) -> Finding {
    let what = s.t("ffmpeg（录像合成）", "ffmpeg (recording composite)");
    if !c.recording.composite {
        return finding(Level::Pass, what, s.t("未启用合成", "composite off"), "");
    }
    match std::process::Command::new(&c.recording.ffmpeg).arg("-version").output() {
        Ok(o) if o.status.success() => finding(Level::Pass, what, c.recording.ffmpeg.display().to_string(), ""),
        _ => finding(
            Level::Warn,
            what,
            format!("{} {}", c.recording.ffmpeg.display(), s.t("不可用", "not found")),
            s.t(
                "apt-get install ffmpeg，或设置 recording.composite = false。",
                "apt-get install ffmpeg, or set recording.composite = false.",
            ),
        ),
    }
}

/// Findings as the command prints them.
pub fn render(findings: &[Finding], lang: Lang) -> String {
    let mut out = String::new();
    for f in findings {
        let mark = match f.level {
            Level::Pass => "✓",
            Level::Warn => "!",
            Level::Fail => "✗",
        };
        out.push_str(&format!("{mark} {}: {}\n", f.what, f.found));
        if !f.fix.is_empty() {
            out.push_str(&format!("    → {}\n", f.fix));
        }
    }
    let fails = findings.iter().filter(|f| f.level == Level::Fail).count();
    let warns = findings.iter().filter(|f| f.level == Level::Warn).count();
    out.push_str(&match lang {
        Lang::Zh => format!("\n{fails} 项失败，{warns} 项提醒。\n"),
        Lang::En => format!("\n{fails} failed, {warns} to look at.\n"),
    });
    out
}

/// The store: Redis reachable, its persistence, and this machine's clock against Redis's
/// (several nodes must agree on time for bookings and tokens). The embedded store is checked
/// when the server starts.
pub async fn store(c: &Config, lang: Lang) -> Vec<Finding> {
    let s = Say { lang };
    if c.store == "embedded" {
        return vec![finding(Level::Pass, s.t("存储", "store"), s.t("内置（单节点）", "embedded (one node)"), "")];
    }
    let what = s.t("Redis", "Redis");
    let conn = async {
        let client = ::redis::Client::open(c.store.as_str())?;
        client.get_multiplexed_async_connection().await
    };
    let mut con = match tokio::time::timeout(std::time::Duration::from_secs(3), conn).await {
        Ok(Ok(con)) => con,
        Ok(Err(e)) => {
            return vec![finding(
                Level::Fail,
                what,
                e.to_string(),
                s.t("检查 store 地址、密码与防火墙。", "Check the store URL, its password and the firewall."),
            )];
        }
        Err(_) => {
            return vec![finding(
                Level::Fail,
                what,
                s.t("3 秒内无应答", "no answer within 3 s"),
                s.t("检查 Redis 是否运行、地址与防火墙。", "Check that Redis runs, the address and the firewall."),
            )];
        }
    };
    let mut out = vec![finding(Level::Pass, what, s.t("可连接", "reachable"), "")];
    let get = |name: &'static str| ::redis::cmd("CONFIG").arg("GET").arg(name).to_owned();
    let aof: Result<Vec<String>, _> = get("appendonly").query_async(&mut con).await;
    let save: Result<Vec<String>, _> = get("save").query_async(&mut con).await;
    let what = s.t("Redis 持久化", "Redis persistence");
    match (aof, save) {
        (Ok(a), Ok(sv)) => {
            let aof_on = a.get(1).is_some_and(|v| v == "yes");
            let snapshots = sv.get(1).is_some_and(|v| !v.trim().is_empty());
            if aof_on {
                out.push(finding(Level::Pass, what, "appendonly yes", ""));
            } else if snapshots {
                out.push(finding(
                    Level::Warn,
                    what,
                    s.t("仅快照（崩溃时可能丢失最近的排班）", "snapshots only (a crash may lose the latest bookings)"),
                    s.t("建议在 redis.conf 设置 appendonly yes。", "Set appendonly yes in redis.conf."),
                ));
            } else {
                out.push(finding(
                    Level::Fail,
                    what,
                    s.t("未开启（重启即丢失全部数据）", "off (a restart loses everything)"),
                    s.t("在 redis.conf 设置 appendonly yes。", "Set appendonly yes in redis.conf."),
                ));
            }
        }
        _ => out.push(finding(
            Level::Warn,
            what,
            s.t("无法读取 CONFIG（可能被禁用）", "CONFIG cannot be read (perhaps disabled)"),
            "",
        )),
    }
    let time: Result<(i64, i64), _> = ::redis::cmd("TIME").query_async(&mut con).await;
    if let Ok((secs, micros)) = time {
        let theirs = secs as f64 + micros as f64 / 1e6;
        let ours = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
        let offset = ours - theirs;
        let what = s.t("时钟", "clock");
        let found = format!("{} {offset:+.1} s", s.t("与 Redis 相差", "off Redis by"));
        out.push(if offset.abs() > 2.0 {
            finding(
                Level::Fail,
                what,
                found,
                s.t(
                    "启用 NTP 校时（systemctl enable --now systemd-timesyncd）。",
                    "Turn on NTP (systemctl enable --now systemd-timesyncd).",
                ),
            )
        } else {
            finding(Level::Pass, what, found, "")
        });
    }
    out
}
