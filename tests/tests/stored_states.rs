//! The states the pipeline stores as text take exactly the spellings of their domain enums: each
//! column's check constraint lists every variant and nothing else, and Postgres refuses any other
//! value, so a literal mistyped in the SQL fails the first time it runs instead of storing a
//! state no reader knows.

use std::collections::BTreeSet;

use octohooks_domain::job::TriggerType;
use octohooks_domain::status::{AttemptStatus, DestinationStatus, TaskKind, TaskStatus};
use octohooks_tests::database;

/// The quoted values of the check constraint of `table` that names `column`.
async fn allowed(url: &str, table: &str, column: &str) -> BTreeSet<String> {
    let definition = database::text(
        url,
        &format!(
            "SELECT string_agg(pg_get_constraintdef(oid), ' | ') FROM pg_constraint \
             WHERE conrelid = '{table}'::regclass AND contype = 'c' \
               AND pg_get_constraintdef(oid) LIKE '%({column} %'"
        ),
    )
    .await;
    definition
        .split('\'')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

fn spellings<T: Copy>(all: &[T], as_str: fn(T) -> &'static str) -> BTreeSet<String> {
    all.iter().map(|state| as_str(*state).to_owned()).collect()
}

#[tokio::test]
async fn each_stored_state_column_takes_exactly_its_enums_spellings() {
    let (name, url) = database::fresh().await;
    let columns = [
        (
            "message_destinations",
            "status",
            spellings(DestinationStatus::ALL, DestinationStatus::as_str),
        ),
        (
            "attempts",
            "status",
            spellings(AttemptStatus::ALL, AttemptStatus::as_str),
        ),
        (
            "attempts",
            "trigger_type",
            spellings(TriggerType::ALL, TriggerType::as_str),
        ),
        (
            "outbox",
            "trigger_type",
            spellings(TriggerType::ALL, TriggerType::as_str),
        ),
        (
            "background_tasks",
            "status",
            spellings(TaskStatus::ALL, TaskStatus::as_str),
        ),
        (
            "background_tasks",
            "kind",
            spellings(TaskKind::ALL, TaskKind::as_str),
        ),
    ];
    for (table, column, expected) in &columns {
        assert_eq!(
            &allowed(&url, table, column).await,
            expected,
            "{table}.{column} is checked against its enum's spellings"
        );
    }
    database::drop_database(&name).await;
}

#[tokio::test]
async fn a_state_no_enum_has_is_refused() {
    let (name, url) = database::fresh().await;
    let mut conn = octohooks_db::connect::Target::parse(&url)
        .unwrap()
        .open_diesel()
        .await
        .unwrap();
    let refused = diesel_async::RunQueryDsl::execute(
        diesel::sql_query(
            "INSERT INTO outbox (message_id, endpoint_id, attempt, trigger_type, due) \
             VALUES (gen_random_uuid(), gen_random_uuid(), 0, 'Scheduled', now())",
        ),
        &mut conn,
    )
    .await
    .expect_err("a misspelt trigger is refused");
    drop(conn);
    assert!(
        refused.to_string().contains("outbox_trigger_type_known"),
        "{refused}"
    );
    assert_eq!(
        database::count(&url, database::WAITING_JOBS).await,
        0,
        "nothing was stored"
    );
    database::drop_database(&name).await;
}
