//! The store every test gateway runs on, and a backend-neutral way to read what it recorded.
//!
//! `HOOKGATE_TEST_STORE=postgres` runs the gateways on PostgreSQL (a fresh database per gateway
//! on the server `HOOKGATE_TEST_POSTGRES_URL` names); unset or `sqlite`, on a SQLite file in the
//! gateway's folder. `./scripts/test` runs the whole suite once each way. A test that needs
//! PostgreSQL and finds no server fails with the reason: nothing is skipped silently.

pub use super::pg_database::fresh_postgres_database_on;
use std::path::Path;

/// The backend the suite runs on, from `HOOKGATE_TEST_STORE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn backend() -> Backend {
    match std::env::var("HOOKGATE_TEST_STORE").as_deref() {
        Ok("postgres") => Backend::Postgres,
        Ok("sqlite") | Ok("") | Err(_) => Backend::Sqlite,
        Ok(other) => panic!("HOOKGATE_TEST_STORE={other}: expected sqlite or postgres"),
    }
}

/// The test PostgreSQL server's URL.
pub fn postgres_server() -> String {
    std::env::var("HOOKGATE_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "HOOKGATE_TEST_POSTGRES_URL is not set. Run ./scripts/test (it starts a throwaway \
             server), or start one with `scripts/pg start target/pg 55432` and export the URL it \
             prints"
        )
    })
}

/// The CA that signed the test server's TLS certificate (`scripts/pg` makes it).
pub fn postgres_ca() -> String {
    std::env::var("HOOKGATE_TEST_POSTGRES_CA").unwrap_or_else(|_| {
        panic!(
            "HOOKGATE_TEST_POSTGRES_CA is not set: run ./scripts/test, or point it at ca.crt in \
             the folder given to `scripts/pg start`"
        )
    })
}

/// A fresh, empty database on the test server; returns its URL.
pub async fn fresh_postgres_database(name: &str) -> String {
    fresh_postgres_database_on(&postgres_server(), name).await
}

/// The `store.url` of the gateway kept in `dir`: the same store every time it is asked, so a
/// gateway restarted on the same folder finds what it recorded.
pub async fn url_for(dir: &Path) -> String {
    match backend() {
        Backend::Sqlite => format!("sqlite://{}", super::db_path(dir).display()),
        Backend::Postgres => {
            let file = dir.join("postgres-url");
            if let Ok(url) = std::fs::read_to_string(&file) {
                return url;
            }
            let url = fresh_postgres_database("gw").await;
            std::fs::write(&file, &url).expect("write postgres-url");
            url
        }
    }
}

/// A column value, whichever backend it came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
}

impl Val {
    pub fn int(&self) -> i64 {
        match self {
            Val::Int(n) => *n,
            other => panic!("expected an integer, got {other:?}"),
        }
    }

    /// Text, or bytes read as UTF-8.
    pub fn text(&self) -> String {
        self.opt_text()
            .unwrap_or_else(|| panic!("expected text, got NULL"))
    }

    pub fn opt_text(&self) -> Option<String> {
        match self {
            Val::Null => None,
            Val::Text(s) => Some(s.clone()),
            Val::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Val::Int(n) => Some(n.to_string()),
        }
    }

    pub fn opt_int(&self) -> Option<i64> {
        match self {
            Val::Null => None,
            other => Some(other.int()),
        }
    }
}

/// Read access to a gateway's store with plain SQL. The statements tests use are the same on both
/// backends, the routing state included: both keep it off `events`, in `unrouted` and
/// `event_types` (their migrations `routing_off_events`).
pub struct Db {
    url: String,
}

impl Db {
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into() }
    }

    /// How many stored events wait to be routed.
    pub async fn unrouted(&self) -> i64 {
        self.count(self.unrouted_sql()).await
    }

    /// A statement counting the stored events that wait to be routed.
    pub fn unrouted_sql(&self) -> &'static str {
        "SELECT COUNT(*) FROM unrouted"
    }

    /// A subquery selecting the ids of the events routed as `event_type`.
    pub fn event_ids_of_type(&self, event_type: &str) -> String {
        format!(
            "SELECT e.id FROM events e JOIN event_types t ON t.seq = e.seq \
             WHERE t.event_type = '{event_type}'"
        )
    }

    pub async fn rows(&self, sql: &str) -> Vec<Vec<Val>> {
        match self.url.strip_prefix("sqlite://") {
            Some(path) => sqlite_rows(path, sql),
            None => postgres_rows(&self.url, sql).await,
        }
    }

    /// The first column of the first row (e.g. a `COUNT(*)`).
    pub async fn one(&self, sql: &str) -> Val {
        self.rows(sql)
            .await
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next())
            .unwrap_or_else(|| panic!("no row for {sql}"))
    }

    pub async fn count(&self, sql: &str) -> i64 {
        self.one(sql).await.int()
    }

    /// The first column of every row, as text.
    pub async fn texts(&self, sql: &str) -> Vec<String> {
        self.rows(sql)
            .await
            .iter()
            .map(|r| r[0].opt_text().unwrap_or_default())
            .collect()
    }
}

fn sqlite_rows(path: &str, sql: &str) -> Vec<Vec<Val>> {
    use rusqlite::types::ValueRef;
    let db =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open db");
    let mut stmt = db.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        (0..n)
            .map(|i| {
                Ok(match r.get_ref(i)? {
                    ValueRef::Null => Val::Null,
                    ValueRef::Integer(v) => Val::Int(v),
                    ValueRef::Real(v) => Val::Int(v as i64),
                    ValueRef::Text(t) => Val::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Val::Bytes(b.to_vec()),
                })
            })
            .collect()
    })
    .expect("query")
    .collect::<Result<_, _>>()
    .expect("rows")
}

async fn postgres_rows(url: &str, sql: &str) -> Vec<Vec<Val>> {
    use tokio_postgres::types::Type;
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to the test database");
    tokio::spawn(connection);
    let rows = client
        .query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.iter()
        .map(|r| {
            (0..r.len())
                .map(|i| {
                    let ty = r.columns()[i].type_();
                    let val = if *ty == Type::INT8 {
                        r.get::<_, Option<i64>>(i).map(Val::Int)
                    } else if *ty == Type::INT4 {
                        r.get::<_, Option<i32>>(i).map(|v| Val::Int(v.into()))
                    } else if *ty == Type::BOOL {
                        r.get::<_, Option<bool>>(i).map(|v| Val::Int(v.into()))
                    } else if *ty == Type::BYTEA {
                        r.get::<_, Option<Vec<u8>>>(i).map(Val::Bytes)
                    } else {
                        r.get::<_, Option<String>>(i).map(Val::Text)
                    };
                    val.unwrap_or(Val::Null)
                })
                .collect()
        })
        .collect()
}

/// Another connection holding the store's write lock on events: what a failing or overloaded
/// database looks like to the gateway. Released by [`WriteBlocker::release`].
pub enum WriteBlocker {
    Sqlite(rusqlite::Connection),
    Postgres(tokio_postgres::Client),
}

impl WriteBlocker {
    pub async fn hold(url: &str) -> Self {
        match url.strip_prefix("sqlite://") {
            Some(path) => {
                let conn = rusqlite::Connection::open(path).expect("open");
                conn.busy_timeout(std::time::Duration::from_secs(1))
                    .expect("busy");
                conn.execute_batch("BEGIN EXCLUSIVE").expect("lock");
                Self::Sqlite(conn)
            }
            None => {
                let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                    .await
                    .expect("connect");
                tokio::spawn(connection);
                client
                    .batch_execute("BEGIN; LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
                    .await
                    .expect("lock");
                Self::Postgres(client)
            }
        }
    }

    pub async fn release(self) {
        match self {
            Self::Sqlite(conn) => conn.execute_batch("ROLLBACK").expect("unlock"),
            Self::Postgres(client) => client.batch_execute("ROLLBACK").await.expect("unlock"),
        }
    }
}
