//! A fresh database per test on the test PostgreSQL server: shared by these tests and the
//! PostgreSQL store's unit tests (`src/store/postgres/tests.rs`), so both make them one way.

/// A fresh, empty database on the server `base` names; returns its URL.
pub async fn fresh_postgres_database_on(base: &str, name: &str) -> String {
    let (client, connection) = tokio_postgres::connect(base, tokio_postgres::NoTls)
        .await
        .expect("connect to HOOKGATE_TEST_POSTGRES_URL");
    tokio::spawn(connection);
    let db = format!("t_{name}_{}", ulid::Ulid::new()).to_lowercase();
    client
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await
        .expect("create test database");
    let mut url = url::Url::parse(base).expect("test url");
    url.set_path(&format!("/{db}"));
    url.to_string()
}
