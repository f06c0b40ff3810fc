//! Test helpers: each test works in a PostgreSQL schema of its own and
//! drops it when it ends, so runs on one database never see each other.
//! Only compiled with the `testing` feature (tests enable it; release
//! builds do not).

use sqlx::postgres::{PgConnectOptions, PgPool};

pub const URL_VAR: &str = "GATEHOUSE_TEST_DATABASE_URL";

pub fn test_url() -> String {
    std::env::var(URL_VAR).unwrap_or_else(|_| {
        panic!("{URL_VAR} is not set; PostgreSQL tests need it (e.g. postgres://postgres@127.0.0.1:5432/test)")
    })
}

pub fn unique_schema_name() -> String {
    format!("gh_test_{}", gatehouse_core::ids::key_id().to_lowercase())
}

/// A schema created for one test and dropped when the value is dropped,
/// whether the test passed or panicked.
pub struct TestSchema {
    pub name: String,
    base_url: String,
}

impl TestSchema {
    /// Creates a new, empty schema with a unique name.
    pub async fn create() -> TestSchema {
        let base_url = test_url();
        let name = unique_schema_name();
        let admin = PgPool::connect(&base_url)
            .await
            .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {base_url}: {e}"));
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&admin)
            .await
            .expect("create schema");
        admin.close().await;
        TestSchema { name, base_url }
    }

    /// [`TestSchema::create`] for synchronous tests.
    pub fn create_blocking() -> TestSchema {
        on_own_runtime(TestSchema::create())
    }

    /// Connect options whose connections use this schema.
    pub fn options(&self) -> PgConnectOptions {
        let options: PgConnectOptions = self.base_url.parse().expect("valid database URL");
        options.options([("search_path", self.name.as_str())])
    }

    /// A database URL whose connections use this schema, for processes.
    pub fn url(&self) -> String {
        let sep = if self.base_url.contains('?') {
            '&'
        } else {
            '?'
        };
        format!(
            "{}{sep}options=-c%20search_path%3D{}",
            self.base_url, self.name
        )
    }
}

/// Runs `future` to completion on a runtime of its own, on another thread,
/// so it works from synchronous code and from inside another runtime alike.
fn on_own_runtime<T: Send + 'static>(
    future: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("test runtime")
            .block_on(future)
    })
    .join()
    .expect("test runtime thread")
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let (url, name) = (self.base_url.clone(), self.name.clone());
        // Dropping must not panic while a failed test is already unwinding.
        let dropped = on_own_runtime(async move {
            let admin = PgPool::connect(&url).await.map_err(|e| e.to_string())?;
            let result = sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                .execute(&admin)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string());
            admin.close().await;
            result
        });
        if let Err(e) = dropped {
            eprintln!("could not drop test schema {}: {e}", self.name);
        }
    }
}
