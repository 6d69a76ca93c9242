//! The network plugins against real servers on loopback, and the grant rules that apply to
//! the address actually connected.

use agent::plugin::RunLimits;
use agent::probe::ProbeSettings;
use protocol::Status;

use crate::support::*;

#[tokio::test]
async fn tcp_reports_open_and_refused_ports() {
    let (runtime, _cache) = runtime();
    let tcp = load_standard(&runtime, "tcp").await;
    let open = http_server(200, "").await;
    let report = run(
        &tcp,
        &request(
            &[("host", "127.0.0.1"), ("port", &open.port().to_string())],
            grants(&["net=127.0.0.1:*"]),
            RunLimits::default(),
        ),
    )
    .await;
    assert_eq!(report.status, Status::Ok, "{report:?}");
    assert_eq!(report.metrics[0].name, "time");

    // Bind, note the port, close: nothing listens there any more.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let report = run(
        &tcp,
        &request(
            &[("host", "127.0.0.1"), ("port", &closed.to_string())],
            grants(&["net=127.0.0.1:*"]),
            RunLimits::default(),
        ),
    )
    .await;
    assert_eq!(report.status, Status::Critical);
    // The target once, then why: not `127.0.0.1:N: 127.0.0.1:N: connection refused`.
    assert_eq!(report.summary, format!("127.0.0.1:{closed}: connection refused"));
}

#[tokio::test]
async fn http_checks_status_and_body() {
    let (runtime, _cache) = runtime();
    let http = load_standard(&runtime, "http").await;
    let up = http_server(200, r#"{"status":"up"}"#).await;
    let down = http_server(503, "maintenance").await;
    let grant = grants(&["net=127.0.0.1:*"]);

    let url = format!("http://127.0.0.1:{}/health", up.port());
    let ok = run(&http, &request(&[("url", &url), ("contains", "\"up\"")], grant.clone(), RunLimits::default())).await;
    assert_eq!(ok.status, Status::Ok, "{ok:?}");
    assert!(ok.summary.starts_with(&format!("200 {url} in")), "{}", ok.summary);

    let url = format!("http://127.0.0.1:{}/", down.port());
    let bad = run(&http, &request(&[("url", &url)], grant.clone(), RunLimits::default())).await;
    assert_eq!(bad.status, Status::Critical);
    assert!(bad.summary.starts_with("unexpected status 503"), "{}", bad.summary);

    let missing =
        run(&http, &request(&[("url", &url), ("status", "503"), ("contains", "ready")], grant, RunLimits::default()))
            .await;
    assert_eq!(missing.status, Status::Critical);
    assert!(missing.summary.starts_with("body does not contain `ready`"), "{}", missing.summary);
}

#[tokio::test]
async fn smtp_reads_banner_and_extensions() {
    let (runtime, _cache) = runtime();
    let smtp = load_standard(&runtime, "smtp").await;
    let server = smtp_server("220 mx.test ESMTP ready", &["PIPELINING", "STARTTLS", "SIZE 1000"]).await;
    let port = server.port().to_string();
    let report = run(
        &smtp,
        &request(
            &[("host", "127.0.0.1"), ("port", &port), ("starttls", "true")],
            grants(&["net=127.0.0.1:*"]),
            RunLimits::default(),
        ),
    )
    .await;
    assert_eq!(report.status, Status::Ok, "{report:?}");
    assert!(report.summary.starts_with("220 mx.test ESMTP ready"), "{}", report.summary);
    assert_eq!(report.details.as_deref(), Some("extensions: PIPELINING, STARTTLS, SIZE 1000"));

    let plain = smtp_server("220 old.test ready", &[]).await;
    let report = run(
        &smtp,
        &request(
            &[("host", "127.0.0.1"), ("port", &plain.port().to_string()), ("starttls", "true")],
            grants(&["net=127.0.0.1:*"]),
            RunLimits::default(),
        ),
    )
    .await;
    assert_eq!(report.status, Status::Critical);
    assert!(report.summary.starts_with("STARTTLS not offered"), "{}", report.summary);
}

#[tokio::test]
async fn tls_cert_counts_days_and_verifies_against_configured_roots() {
    let pki = pki(-1, 20);
    let server = tls_server(vec![pki.leaf_der.clone(), pki.ca_der.clone()], pki.leaf_key.clone_key()).await;
    let port = server.port().to_string();
    let config = [("host", "localhost"), ("port", port.as_str())];
    let grant = grants(&["net=localhost:*"]);

    // Trusted through the configured CA: 20 days left is a warning (default warning 30, critical 14).
    let (runtime, _cache) = runtime_with(ProbeSettings { extra_roots: vec![pki.ca_der.clone()], ..Default::default() });
    let tls = load_standard(&runtime, "tls-cert").await;
    let report = run(&tls, &request(&config, grant.clone(), RunLimits::default())).await;
    assert_eq!(report.status, Status::Warning, "{report:?}");
    assert!(report.summary.starts_with("certificate for localhost expires in 20 days"), "{}", report.summary);
    assert!(report.details.as_deref().unwrap_or("").contains("issuer: CN=Vakt Test CA"), "{:?}", report.details);

    // Without the CA the chain does not verify: critical, unless allowed.
    let (untrusting, _cache2) = crate::support::runtime();
    let tls = load_standard(&untrusting, "tls-cert").await;
    let report = run(&tls, &request(&config, grant.clone(), RunLimits::default())).await;
    assert_eq!(report.status, Status::Critical);
    assert!(report.summary.contains("chain does not verify"), "{}", report.summary);
    let allowed = [("host", "localhost"), ("port", port.as_str()), ("allow-invalid", "true")];
    let report = run(&tls, &request(&allowed, grant, RunLimits::default())).await;
    assert_eq!(report.status, Status::Warning, "{report:?}");
}

#[tokio::test]
async fn an_expired_certificate_is_still_read_and_reported() {
    let pki = pki(-100, -3);
    let server = tls_server(vec![pki.leaf_der.clone()], pki.leaf_key.clone_key()).await;
    let (runtime, _cache) = runtime_with(ProbeSettings { extra_roots: vec![pki.ca_der.clone()], ..Default::default() });
    let tls = load_standard(&runtime, "tls-cert").await;
    let port = server.port().to_string();
    let report = run(
        &tls,
        &request(&[("host", "localhost"), ("port", &port)], grants(&["net=localhost:*"]), RunLimits::default()),
    )
    .await;
    assert_eq!(report.status, Status::Critical);
    assert!(report.summary.starts_with("certificate for localhost expired 3 days ago"), "{}", report.summary);
}

#[tokio::test]
async fn https_refuses_an_unverified_server_unless_insecure() {
    let pki = pki(-1, 90);
    let server = tls_server(vec![pki.leaf_der.clone()], pki.leaf_key.clone_key()).await;
    let (runtime, _cache) = runtime();
    let http = load_standard(&runtime, "http").await;
    let url = format!("https://localhost:{}/", server.port());
    let report = run(&http, &request(&[("url", &url)], grants(&["net=localhost:*"]), RunLimits::default())).await;
    assert_eq!(report.status, Status::Critical);
    assert!(report.summary.contains("did not verify"), "{}", report.summary);
}

#[tokio::test]
async fn dns_answers_and_nxdomain_from_a_local_server() {
    let server = dns_server(&[("www.vakt.test", [192, 0, 2, 10])]).await;
    let (runtime, _cache) = runtime();
    let dns = load_standard(&runtime, "dns").await;
    let server_text = server.to_string();
    let grant = grants(&["net=*.vakt.test:53", &format!("net={server_text}")]);

    let report = run(
        &dns,
        &request(
            &[("name", "www.vakt.test"), ("server", &server_text), ("expect", "192.0.2.10")],
            grant.clone(),
            RunLimits::default(),
        ),
    )
    .await;
    assert_eq!(report.status, Status::Ok, "{report:?}");
    assert!(report.summary.starts_with("www.vakt.test → 192.0.2.10"), "{}", report.summary);

    let report = run(
        &dns,
        &request(&[("name", "nope.vakt.test"), ("server", &server_text)], grant.clone(), RunLimits::default()),
    )
    .await;
    assert_eq!(report.status, Status::Critical);
    assert!(report.summary.contains("NXDOMAIN"), "{}", report.summary);

    // The server itself must be granted.
    let report = run(
        &dns,
        &request(
            &[("name", "www.vakt.test"), ("server", &server_text)],
            grants(&["net=*.vakt.test:53"]),
            RunLimits::default(),
        ),
    )
    .await;
    assert!(report.summary.starts_with("denied: no net grant covers the DNS server"), "{}", report.summary);
}

#[tokio::test]
async fn a_dns_answer_cannot_steer_a_name_grant_to_loopback() {
    // steer.vakt.test resolves to 127.0.0.1, where a service listens. A grant for the *name*
    // must not reach it; a grant for the address does.
    let target = http_server(200, "{}").await;
    let server = dns_server(&[("steer.vakt.test", [127, 0, 0, 1])]).await;
    let (runtime, _cache) = runtime_with(ProbeSettings { nameservers: vec![server], ..Default::default() });
    let tcp = load_standard(&runtime, "tcp").await;
    let port = target.port().to_string();
    let config = [("host", "steer.vakt.test"), ("port", port.as_str())];

    let by_name =
        run(&tcp, &request(&config, grants(&[&format!("net=steer.vakt.test:{port}")]), RunLimits::default())).await;
    assert_eq!(by_name.status, Status::Unknown);
    assert!(
        by_name
            .summary
            .starts_with(&format!("denied: steer.vakt.test resolved to 127.0.0.1:{port}, which no net grant covers")),
        "{}",
        by_name.summary
    );

    // An address grant alone does not let the name be looked up at all...
    let by_address =
        run(&tcp, &request(&config, grants(&[&format!("net=127.0.0.1:{port}")]), RunLimits::default())).await;
    assert_eq!(
        by_address.summary,
        format!(
            "denied: no net grant covers steer.vakt.test:{port} (grant it with --grant net=steer.vakt.test:{port})"
        )
    );
    // ...both together reach it: the name may be resolved, the address may be connected to.
    let both = grants(&[&format!("net=steer.vakt.test:{port}"), &format!("net=127.0.0.1:{port}")]);
    let by_both = run(&tcp, &request(&config, both, RunLimits::default())).await;
    assert_eq!(by_both.status, Status::Ok, "{by_both:?}");
}

#[tokio::test]
async fn a_dns_answer_cannot_steer_a_name_grant_to_this_hosts_own_address() {
    // The host's own (non-loopback) interface address serves what loopback serves when a
    // service listens on all addresses.
    let own = sysinfo::Networks::new_with_refreshed_list()
        .unwrap()
        .values()
        .flat_map(|n| n.ip_networks().iter().map(|i| i.addr))
        .find_map(|ip| match ip {
            std::net::IpAddr::V4(v4) if !v4.is_loopback() && !v4.is_link_local() => Some(v4),
            _ => None,
        })
        .expect("this test needs an IPv4 interface address besides loopback");
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { while listener.accept().await.is_ok() {} });
    let records: &'static [(&'static str, [u8; 4])] = Box::leak(Box::new([("me.vakt.test", own.octets())]));
    let server = dns_server(records).await;
    let (runtime, _cache) = runtime_with(ProbeSettings { nameservers: vec![server], ..Default::default() });
    let tcp = load_standard(&runtime, "tcp").await;
    let port_text = port.to_string();
    let config = [("host", "me.vakt.test"), ("port", port_text.as_str())];
    let by_name =
        run(&tcp, &request(&config, grants(&[&format!("net=*.vakt.test:{port}")]), RunLimits::default())).await;
    assert!(
        by_name
            .summary
            .starts_with(&format!("denied: me.vakt.test resolved to {own}:{port}, which no net grant covers")),
        "{}",
        by_name.summary
    );
    let with_address = grants(&[&format!("net=*.vakt.test:{port}"), &format!("net={own}:{port}")]);
    assert_eq!(run(&tcp, &request(&config, with_address, RunLimits::default())).await.status, Status::Ok);
}
