//! Postgres over TLS, against a server of the test's own that refuses plaintext TCP and
//! presents a certificate signed by a CA the test made: `sslmode` and `sslrootcert` in the
//! database URL mean what they mean to libpq, for the pool, the change listener and the
//! migrations alike.

use octohooks_db::connect::Target;
use octohooks_tests::tls_postgres::{Authority, TlsPostgres};
use octohooks_tests::{Options, TestApp};
use reqwest::{Method, StatusCode};

fn write_pem(server: &TlsPostgres, name: &str, pem: &str) -> String {
    let path = server.dir.join(name);
    std::fs::write(&path, pem).expect("write PEM");
    path.display().to_string()
}

#[tokio::test]
async fn the_services_run_on_a_server_that_only_speaks_tls() {
    let ca = Authority::new("Octohooks test CA");
    let (cert, key) = ca.issue(&["127.0.0.1"]);
    let server = TlsPostgres::start(&cert, &key);
    let root = write_pem(&server, "ca.pem", &ca.pem);
    let url = server.url(
        "127.0.0.1",
        "octohooks_tls",
        &format!("sslmode=verify-full&sslrootcert={root}"),
    );

    // The API creates and migrates the database, serves from its pool and listens for
    // changes, all over verified TLS.
    let app = TestApp::spawn_with(Options {
        database_url: Some(url),
        ..Options::api_only()
    })
    .await;
    let created = app
        .post(
            "/api/v1/applications",
            serde_json::json!({"name": "over tls"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let listed = app.call(Method::GET, "/api/v1/applications", None).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert_eq!(listed.json[0]["name"], "over tls", "{}", listed.text);

    let sessions = server.psql(
        "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl), \
         count(*) FILTER (WHERE a.application_name = 'octohooks-invalidation' AND s.ssl) \
         FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
         WHERE a.datname = 'octohooks_tls' AND a.backend_type = 'client backend' \
         AND a.client_addr IS NOT NULL",
    );
    let counts: Vec<i64> = sessions
        .split('|')
        .map(|n| n.parse().expect("a count"))
        .collect();
    assert!(counts[0] >= 2, "TLS sessions: {sessions}");
    assert_eq!(counts[1], 0, "plaintext sessions: {sessions}");
    assert_eq!(counts[2], 1, "the change listener: {sessions}");
    app.stop().await;
}

#[tokio::test]
async fn each_sslmode_checks_what_libpq_checks() {
    let ca = Authority::new("Octohooks test CA");
    let (cert, key) = ca.issue(&["127.0.0.1"]);
    let server = TlsPostgres::start(&cert, &key);
    let root = write_pem(&server, "ca.pem", &ca.pem);
    let stranger = write_pem(&server, "other-ca.pem", &Authority::new("Someone else").pem);
    let open = |host: &str, params: String| {
        let url = server.url(host, "postgres", &params);
        async move {
            Target::parse(&url)
                .expect("URL")
                .open()
                .await
                .map(drop)
                .map_err(|err| err.to_string())
        }
    };

    // Encrypted without checking: any certificate will do.
    open("127.0.0.1", "sslmode=require".into()).await.unwrap();
    // `prefer` does not encrypt loopback traffic, which this server refuses.
    let preferred = open("localhost", "sslmode=prefer".into())
        .await
        .unwrap_err();
    assert!(preferred.contains("no encryption"), "{preferred}");
    // The chain is checked, the name is not: `localhost` is not in the certificate.
    open("localhost", format!("sslmode=verify-ca&sslrootcert={root}"))
        .await
        .unwrap();
    // Chain and name.
    open(
        "127.0.0.1",
        format!("sslmode=verify-full&sslrootcert={root}"),
    )
    .await
    .unwrap();
    let wrong_name = open(
        "localhost",
        format!("sslmode=verify-full&sslrootcert={root}"),
    )
    .await
    .unwrap_err();
    assert!(wrong_name.contains("not valid for name"), "{wrong_name}");
    let wrong_ca = open(
        "127.0.0.1",
        format!("sslmode=verify-ca&sslrootcert={stranger}"),
    )
    .await
    .unwrap_err();
    assert!(wrong_ca.contains("UnknownIssuer"), "{wrong_ca}");
    // `require` with a root certificate checks the chain, as in libpq.
    let required = open(
        "127.0.0.1",
        format!("sslmode=require&sslrootcert={stranger}"),
    )
    .await
    .unwrap_err();
    assert!(required.contains("UnknownIssuer"), "{required}");
    // The server refuses plaintext, so `disable` cannot get in.
    let plain = open("127.0.0.1", "sslmode=disable".into())
        .await
        .unwrap_err();
    assert!(plain.contains("no encryption"), "{plain}");
}
