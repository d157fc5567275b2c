//! `sql:` steps: one statement with bound parameters on a fresh connection
//! to PostgreSQL or MySQL/MariaDB (sqlx's drivers; TLS as the URL's
//! `sslmode`/`ssl-mode` says), within the step's timeout, which is also
//! set on the server so that the engine itself cancels a statement that
//! runs past it (PostgreSQL `statement_timeout`, MariaDB
//! `max_statement_time`, MySQL `max_execution_time`).
//!
//! The rows are the body, a JSON array of objects (column name to value),
//! so `json` queries read them; `rows`, `columns` and `affected` query the
//! [`SqlAnswer`] (beside `Exchange` in [`super::http`]). Failures keep their kind: `connect`, `tls`, `auth`
//! (SQLSTATE class 28, MySQL 1044/1045/1698), `timeout` (PostgreSQL 57014,
//! MariaDB 1969, MySQL 3024, or no answer at all) and `query` (any other
//! error the engine reports, with its SQLSTATE and MySQL error number).

use std::str::FromStr;
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlDatabaseError, MySqlRow};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgRow};
use sqlx::{AssertSqlSafe, Column, ConnectOptions, Connection, Executor, Row, TypeInfo, ValueRef};

use super::http::{Exchange, SqlAnswer, Transport, TransportError};
use super::tcp;
use crate::config::SqlStep;
use crate::config::template::{RenderError, Scope};
use crate::journey::result::FailureKind;
use crate::journey::timing::Timings;

/// How long past the server-side timeout Lookout waits for the engine's own
/// cancellation to arrive before it gives up on the connection.
pub const GRACE: Duration = Duration::from_millis(500);

/// An `sql` step with its templates rendered.
#[derive(Debug, Clone)]
pub struct Statement {
    /// The URL as rendered (credentials included: never stored as is).
    pub url: String,
    pub query: String,
    /// Parameters in order, typed as JSON.
    pub params: Vec<Value>,
}

/// The two protocols an `sql` step speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Postgres,
    MySql,
}

impl Engine {
    /// The engine a URL's scheme names (`postgres`, `postgresql`, `mysql`,
    /// `mariadb`), if any.
    pub fn of(url: &str) -> Option<Engine> {
        match url.split_once("://")?.0 {
            "postgres" | "postgresql" => Some(Engine::Postgres),
            "mysql" | "mariadb" => Some(Engine::MySql),
            _ => None,
        }
    }
}

impl Statement {
    /// Renders the URL and the parameters.
    ///
    /// Errors: a template names a value this run does not have.
    pub fn render(step: &SqlStep, scope: &dyn Scope) -> Result<Self, RenderError> {
        Ok(Self {
            url: step.url.render_string(scope)?,
            query: step.query.clone(),
            params: step
                .params
                .iter()
                .map(|p| p.render(scope))
                .collect::<Result<_, _>>()?,
        })
    }

    /// The URL as stored, password masked ([`crate::config::sql_target`]).
    pub fn url(&self) -> String {
        crate::config::sql_target(&self.url)
    }
}

/// Binds each JSON parameter with its own type: integers as BIGINT, other
/// numbers as DOUBLE, booleans, NULL, text; lists and objects as JSON text.
macro_rules! bind {
    ($query:expr, $params:expr) => {{
        let mut q = $query;
        for p in $params {
            q = match p {
                Value::Null => q.bind(None::<String>),
                Value::Bool(b) => q.bind(*b),
                Value::Number(n) => match n.as_i64() {
                    Some(i) => q.bind(i),
                    None => q.bind(n.as_f64().unwrap_or(f64::NAN)),
                },
                Value::String(s) => q.bind(s.clone()),
                other => q.bind(other.to_string()),
            };
        }
        q
    }};
}

/// Runs the bound query on `$conn` and reads rows and affected counts up
/// to `$max` bytes of JSON, waiting at most `$left` plus [`GRACE`].
macro_rules! read {
    ($conn:ident, $query:expr, $cell:ident, $max:expr, $left:expr, $engine:expr) => {{
        use futures_util::TryStreamExt;
        let max = usize::try_from($max).unwrap_or(usize::MAX);
        let work = async {
            let mut stream = $conn.fetch_many($query);
            let mut rows = Vec::new();
            let mut answer = SqlAnswer::default();
            let mut size = 2;
            while let Some(item) = stream
                .try_next()
                .await
                .map_err(|e| classify(e, Stage::Query, $engine))?
            {
                match item {
                    sqlx::Either::Left(done) => answer.affected += done.rows_affected(),
                    sqlx::Either::Right(row) => {
                        if answer.columns.is_empty() {
                            answer.columns =
                                row.columns().iter().map(|c| c.name().to_string()).collect();
                        }
                        let object = row_object(&row, &answer.columns, $cell);
                        size += object.to_string().len() + 1;
                        if size > max {
                            let msg = format!("the rows are larger than max_body ({max} bytes)");
                            return Err(TransportError::new(FailureKind::BodyLimit, msg));
                        }
                        rows.push(object);
                    }
                }
            }
            Ok((rows, answer))
        };
        match tokio::time::timeout($left.saturating_add(GRACE), work).await {
            Ok(out) => out,
            Err(_) => Err(tcp::timed_out(
                "the statement did not finish (the connection was dropped)".into(),
                $left,
            )),
        }
    }};
}

/// Connects, sets the server-side timeout, runs the statement and reads up
/// to `max_body` bytes of rows (as JSON), all within `timeout` (plus
/// [`GRACE`] for the engine's cancellation to arrive).
///
/// Errors (kinds): `Prober` (not a PostgreSQL/MySQL URL, or one sqlx cannot
/// read), `Connect`, `Tls`, `Auth`, `Timeout`, `Query`, `BodyLimit` (more
/// rows than `max_body` holds), `Protocol`.
pub async fn send(
    stmt: &Statement,
    timeout: Duration,
    max_body: u64,
) -> Result<Exchange, TransportError> {
    let clock = Instant::now();
    let engine = Engine::of(&stmt.url).ok_or_else(|| {
        let msg = format!(
            "`{}` is not a postgres://, mysql:// or mariadb:// URL",
            stmt.url()
        );
        TransportError::new(FailureKind::Prober, msg)
    })?;
    let mut timings = Timings::default();
    let (rows, answer) = match engine {
        Engine::Postgres => postgres(stmt, timeout, max_body, &mut timings).await?,
        Engine::MySql => mysql(stmt, timeout, max_body, &mut timings).await?,
    };
    let elapsed = clock.elapsed();
    timings.total_ms = Some(ms(elapsed));
    let body = serde_json::to_vec(&rows).unwrap_or_default();
    let mut x = tcp::answer(
        Transport::Sql,
        body,
        "application/json",
        stmt.url(),
        elapsed,
        timings,
    );
    x.sql = Some(answer);
    Ok(x)
}

/// Rows as JSON objects and what else the statement returned.
type Outcome = (Vec<Value>, SqlAnswer);

async fn postgres(
    stmt: &Statement,
    timeout: Duration,
    max_body: u64,
    timings: &mut Timings,
) -> Result<Outcome, TransportError> {
    let clock = Instant::now();
    let options = PgConnectOptions::from_str(&stmt.url).map_err(|e| unreadable(stmt, e))?;
    let connect = options.connect();
    let mut conn: PgConnection = connected(stmt, connect, timeout).await?;
    timings.connect_ms = Some(ms(clock.elapsed()));
    let left = timeout.saturating_sub(clock.elapsed()).max(MIN_LEFT);
    let set = format!("SET statement_timeout = {}", ms(left));
    if let Err(e) = conn.execute(sqlx::raw_sql(AssertSqlSafe(set))).await {
        return Err(classify(e, Stage::Query, Engine::Postgres));
    }
    let query = bind!(sqlx::query(AssertSqlSafe(stmt.query.clone())), &stmt.params);
    let out = read!(conn, query, pg_cell, max_body, left, Engine::Postgres);
    close(conn).await;
    out
}

async fn mysql(
    stmt: &Statement,
    timeout: Duration,
    max_body: u64,
    timings: &mut Timings,
) -> Result<Outcome, TransportError> {
    let clock = Instant::now();
    // MariaDB speaks MySQL's protocol; sqlx knows only the `mysql` scheme.
    let url = match stmt.url.strip_prefix("mariadb://") {
        Some(rest) => format!("mysql://{rest}"),
        None => stmt.url.clone(),
    };
    let options = MySqlConnectOptions::from_str(&url).map_err(|e| unreadable(stmt, e))?;
    let connect = options.connect();
    let mut conn: MySqlConnection = connected(stmt, connect, timeout).await?;
    timings.connect_ms = Some(ms(clock.elapsed()));
    let left = timeout.saturating_sub(clock.elapsed()).max(MIN_LEFT);
    // MariaDB's variable is in seconds; MySQL's (SELECT only) in ms.
    let mariadb = format!("SET SESSION max_statement_time = {:.3}", left.as_secs_f64());
    if let Err(e) = conn.execute(sqlx::raw_sql(AssertSqlSafe(mariadb))).await {
        let mysql = format!("SET SESSION max_execution_time = {}", ms(left));
        if mysql_number(&e) != Some(UNKNOWN_VARIABLE)
            || conn
                .execute(sqlx::raw_sql(AssertSqlSafe(mysql)))
                .await
                .is_err()
        {
            return Err(classify(e, Stage::Query, Engine::MySql));
        }
    }
    let query = bind!(sqlx::query(AssertSqlSafe(stmt.query.clone())), &stmt.params);
    let out = read!(conn, query, mysql_cell, max_body, left, Engine::MySql);
    close(conn).await;
    out
}

/// The least time left for the statement once connected (the server
/// refuses a zero timeout as "none").
const MIN_LEFT: Duration = Duration::from_millis(1);

/// MySQL's ER_UNKNOWN_SYSTEM_VARIABLE: not MariaDB.
const UNKNOWN_VARIABLE: u16 = 1193;

/// Connects within `timeout`.
async fn connected<C>(
    stmt: &Statement,
    connect: impl Future<Output = Result<C, sqlx::Error>>,
    timeout: Duration,
) -> Result<C, TransportError> {
    let engine = Engine::of(&stmt.url).unwrap_or(Engine::Postgres);
    match tokio::time::timeout(timeout, connect).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(classify(e, Stage::Connect, engine)),
        Err(_) => Err(tcp::timed_out(
            format!("no connection to {}", host_of(stmt)),
            timeout,
        )),
    }
}

/// Closes politely (the server logs no broken connection), briefly.
async fn close(conn: impl Connection) {
    let _ = tokio::time::timeout(Duration::from_millis(200), conn.close()).await;
}

fn unreadable(stmt: &Statement, e: sqlx::Error) -> TransportError {
    let msg = format!("cannot read the URL `{}`: {e}", stmt.url());
    TransportError::new(FailureKind::Prober, msg)
}

/// `host:port` of the URL, for messages.
fn host_of(stmt: &Statement) -> String {
    url::Url::parse(&stmt.url)
        .ok()
        .and_then(|u| {
            let host = u.host_str()?.to_string();
            Some(match u.port() {
                Some(p) => format!("{host}:{p}"),
                None => host,
            })
        })
        .unwrap_or_else(|| "the server".into())
}

/// Whether an error came while connecting or while running the statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Connect,
    Query,
}

/// The MySQL error number of a database error, if it is one.
fn mysql_number(e: &sqlx::Error) -> Option<u16> {
    match e {
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<MySqlDatabaseError>()
            .map(|m| m.number()),
        _ => None,
    }
}

/// Sorts an sqlx error into a failure kind, with the engine's codes.
fn classify(e: sqlx::Error, stage: Stage, engine: Engine) -> TransportError {
    let number = mysql_number(&e);
    let (kind, msg) = match e {
        sqlx::Error::Database(db) => {
            let sqlstate = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let kind = failure_kind(engine, &sqlstate, number, stage);
            let code = match number {
                Some(n) => format!("MySQL error {n}, SQLSTATE {sqlstate}"),
                None => format!("SQLSTATE {sqlstate}"),
            };
            let what = match kind {
                FailureKind::Auth => "refused the credentials",
                FailureKind::Timeout => "cancelled the statement at the timeout",
                FailureKind::Connect => "refused the connection",
                _ => "query error",
            };
            (kind, format!("{what} ({code}): {}", db.message()))
        }
        sqlx::Error::Io(io) => {
            let what = match stage {
                Stage::Connect => "cannot connect",
                Stage::Query => "connection lost",
            };
            (FailureKind::Connect, format!("{what}: {io}"))
        }
        sqlx::Error::Tls(t) => (FailureKind::Tls, format!("TLS: {t}")),
        sqlx::Error::Configuration(c) => (FailureKind::Prober, format!("cannot read the URL: {c}")),
        sqlx::Error::PoolTimedOut => (FailureKind::Timeout, "no connection in time".into()),
        other => (FailureKind::Protocol, other.to_string()),
    };
    TransportError::new(kind, msg)
}

/// The kind of an error the engine reported: SQLSTATE class 28 (invalid
/// authorization, ISO/IEC 9075) and MySQL's access errors are `auth`;
/// PostgreSQL's query_canceled (57014, what `statement_timeout` raises),
/// MariaDB's ER_STATEMENT_TIMEOUT (1969) and MySQL's
/// ER_QUERY_TIMEOUT (3024) are `timeout`; anything else while connecting
/// (no such database) is `connect`, and while running `query`.
pub fn failure_kind(
    engine: Engine,
    sqlstate: &str,
    mysql_number: Option<u16>,
    stage: Stage,
) -> FailureKind {
    let auth = sqlstate.starts_with("28") || matches!(mysql_number, Some(1044 | 1045 | 1698));
    let timeout = match engine {
        Engine::Postgres => sqlstate == "57014",
        Engine::MySql => matches!(mysql_number, Some(1969 | 3024)),
    };
    match (auth, timeout, stage) {
        (true, _, _) => FailureKind::Auth,
        (_, true, _) => FailureKind::Timeout,
        (_, _, Stage::Connect) => FailureKind::Connect,
        _ => FailureKind::Query,
    }
}

/// One row as a JSON object, in column order.
fn row_object<R>(row: &R, columns: &[String], cell: fn(&R, usize) -> Value) -> Value {
    let map = columns
        .iter()
        .enumerate()
        .map(|(i, name)| (name.clone(), cell(row, i)))
        .collect();
    Value::Object(map)
}

/// Tries each type in turn; the first that decodes gives the value.
macro_rules! first_decoding {
    ($row:expr, $i:expr, $($t:ty => $f:expr),* $(,)?) => {
        $(
            if let Ok(v) = $row.try_get::<$t, _>($i) {
                return $f(v);
            }
        )*
    };
}

fn float(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

fn text<T: ToString>(v: T) -> Value {
    Value::String(v.to_string())
}

fn utc(t: chrono::DateTime<chrono::Utc>) -> Value {
    Value::String(t.to_rfc3339())
}

/// A decimal written as text becomes a JSON number (an integer when it is
/// one), or stays text when it does not fit an `f64`.
fn decimal(text: &str) -> Value {
    if let Ok(i) = text.parse::<i64>() {
        return Value::from(i);
    }
    match text.parse::<f64>() {
        Ok(f) if f.is_finite() => float(f),
        _ => Value::String(text.to_string()),
    }
}

/// A PostgreSQL value as JSON: numbers, booleans, text, JSON, UUIDs and
/// times (RFC 3339), arrays of text or integers, NUMERIC as a number;
/// another type is shown as `<TYPE>` (cast it in the query, e.g. `::text`).
fn pg_cell(row: &PgRow, i: usize) -> Value {
    let Ok(raw) = row.try_get_raw(i) else {
        return Value::Null;
    };
    if raw.is_null() {
        return Value::Null;
    }
    let ty = raw.type_info().name().to_string();
    if ty == "NUMERIC"
        && let Some(t) = raw.as_bytes().ok().and_then(pg_numeric)
    {
        return decimal(&t);
    }
    first_decoding!(row, i,
        bool => Value::Bool,
        i16 => Value::from,
        i32 => Value::from,
        i64 => Value::from,
        f32 => |f: f32| float(f64::from(f)),
        f64 => float,
        String => Value::String,
        Value => |v| v,
        uuid::Uuid => text,
        chrono::DateTime<chrono::Utc> => utc,
        chrono::NaiveDateTime => text,
        chrono::NaiveDate => text,
        chrono::NaiveTime => text,
        Vec<String> => Value::from,
        Vec<i64> => Value::from,
        Vec<i32> => Value::from,
        Vec<u8> => |b: Vec<u8>| Value::String(String::from_utf8_lossy(&b).into_owned()),
    );
    Value::String(format!("<{ty}>"))
}

/// A MySQL/MariaDB value as JSON: numbers (DECIMAL included), booleans
/// (`TINYINT(1)`), text, JSON, times, binary as text; another type is
/// shown as `<TYPE>`.
fn mysql_cell(row: &MySqlRow, i: usize) -> Value {
    let Ok(raw) = row.try_get_raw(i) else {
        return Value::Null;
    };
    if raw.is_null() {
        return Value::Null;
    }
    let ty = raw.type_info().name().to_string();
    if ty == "DECIMAL"
        && let Ok(t) = row.try_get_unchecked::<String, _>(i)
    {
        // The binary protocol sends DECIMAL as its text.
        return decimal(&t);
    }
    // sqlx decodes any integer as `bool`: only `TINYINT(1)` is one.
    if ty == "BOOLEAN"
        && let Ok(b) = row.try_get::<bool, _>(i)
    {
        return Value::Bool(b);
    }
    first_decoding!(row, i,
        i8 => Value::from,
        i16 => Value::from,
        i32 => Value::from,
        i64 => Value::from,
        u8 => Value::from,
        u16 => Value::from,
        u32 => Value::from,
        u64 => Value::from,
        f32 => |f: f32| float(f64::from(f)),
        f64 => float,
        String => Value::String,
        Value => |v| v,
        chrono::DateTime<chrono::Utc> => utc,
        chrono::NaiveDateTime => text,
        chrono::NaiveDate => text,
        chrono::NaiveTime => text,
        Vec<u8> => |b: Vec<u8>| Value::String(String::from_utf8_lossy(&b).into_owned()),
    );
    Value::String(format!("<{ty}>"))
}

/// PostgreSQL's binary NUMERIC (`numeric_send`: ndigits, weight, sign,
/// dscale, then base-10000 digits, all big-endian 16-bit) as decimal text.
/// `None` for NaN, infinities or a malformed value.
pub fn pg_numeric(b: &[u8]) -> Option<String> {
    let word = |i: usize| -> Option<i16> { Some(i16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?])) };
    let ndigits = usize::try_from(word(0)?).ok()?;
    let weight = i32::from(word(2)?);
    let sign = word(4)? as u16;
    let dscale = usize::try_from(word(6)?).ok()?;
    if sign != 0 && sign != 0x4000 {
        return None;
    }
    let digits: Vec<i16> = (0..ndigits)
        .map(|k| word(8 + 2 * k))
        .collect::<Option<_>>()?;
    let digit = |pos: i32| -> i16 {
        usize::try_from(pos)
            .ok()
            .and_then(|p| digits.get(p).copied())
            .unwrap_or(0)
    };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for k in 0..=weight {
            let d = digit(k);
            if k == 0 {
                out.push_str(&d.to_string());
            } else {
                out.push_str(&format!("{d:04}"));
            }
        }
    }
    if dscale > 0 {
        let mut frac = String::new();
        let mut k = weight + 1;
        while frac.len() < dscale {
            frac.push_str(&format!("{:04}", digit(k)));
            k += 1;
        }
        frac.truncate(dscale);
        out.push('.');
        out.push_str(&frac);
    }
    Some(out)
}

fn ms(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(ndigits: i16, weight: i16, sign: u16, dscale: i16, digits: &[i16]) -> Vec<u8> {
        let mut b = Vec::new();
        for w in [ndigits, weight, sign as i16, dscale] {
            b.extend_from_slice(&w.to_be_bytes());
        }
        for d in digits {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b
    }

    #[test]
    fn numeric_binary_reads_as_postgres_prints_it() {
        // 12345.678 = [1, 2345, 6780], weight 1, dscale 3.
        let b = numeric(3, 1, 0, 3, &[1, 2345, 6780]);
        assert_eq!(pg_numeric(&b).as_deref(), Some("12345.678"));
        // -0.0042 = [42], weight -1, dscale 4.
        let b = numeric(1, -1, 0x4000, 4, &[42]);
        assert_eq!(pg_numeric(&b).as_deref(), Some("-0.0042"));
        // 10000 = [1], weight 1 (trailing zero groups dropped), dscale 0.
        let b = numeric(1, 1, 0, 0, &[1]);
        assert_eq!(pg_numeric(&b).as_deref(), Some("10000"));
        // 0 = no digits.
        assert_eq!(pg_numeric(&numeric(0, 0, 0, 0, &[])).as_deref(), Some("0"));
        // NaN.
        assert_eq!(pg_numeric(&numeric(0, 0, 0xC000, 0, &[])), None);
    }

    #[test]
    fn engine_codes_keep_their_kind() {
        use Engine::*;
        assert_eq!(
            failure_kind(Postgres, "28P01", None, Stage::Connect),
            FailureKind::Auth
        );
        assert_eq!(
            failure_kind(MySql, "28000", Some(1045), Stage::Connect),
            FailureKind::Auth
        );
        assert_eq!(
            failure_kind(Postgres, "57014", None, Stage::Query),
            FailureKind::Timeout
        );
        assert_eq!(
            failure_kind(MySql, "70100", Some(1969), Stage::Query),
            FailureKind::Timeout
        );
        assert_eq!(
            failure_kind(Postgres, "3D000", None, Stage::Connect),
            FailureKind::Connect
        );
        assert_eq!(
            failure_kind(Postgres, "42P01", None, Stage::Query),
            FailureKind::Query
        );
        assert_eq!(
            failure_kind(MySql, "42S02", Some(1146), Stage::Query),
            FailureKind::Query
        );
    }

    #[test]
    fn stored_urls_keep_no_password() {
        let t = crate::config::sql_target("postgres://app:hunter2@db:5432/x?sslmode=require");
        assert_eq!(t, "postgres://app:***@db:5432/x?sslmode=require");
        let t = crate::config::sql_target("mysql://db/x?user=app&password=hunter2");
        assert!(!t.contains("hunter2"), "{t}");
        assert_eq!(
            crate::config::sql_target("{{ secrets.db }}"),
            "{{ secrets.db }}"
        );
    }
}
