//! The TypeScript SDK's overhead per `message.create` against a bare `fetch` of the same
//! request (`clients/typescript/bench/overhead.mjs`, run with Node against the bench's API).

use std::path::Path;
use std::process::Command;

use crate::phases::Run;
use crate::stats::Row;

/// Calls of each variant: medians over this many.
const CALLS: u32 = 2000;

/// Runs the SDK overhead script and reports the medians and their differences.
pub async fn overhead(bench: &Run<'_>, quick: bool) -> anyhow::Result<Vec<Row>> {
    bench.admin.application(bench.key, "sdk", &[]).await?;
    let calls = if quick { CALLS / 10 } else { CALLS };
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../clients/typescript");
    let api = bench.api.to_owned();
    let key = bench.key.to_owned();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .current_dir(&sdk)
            .args(["bench/overhead.mjs", &api, &key, "sdk", &calls.to_string()])
            .output()
    })
    .await??;
    anyhow::ensure!(
        output.status.success(),
        "SDK overhead script failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let figures: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let figure = |name: &str| figures[name].as_f64().unwrap_or(f64::NAN);
    let (sdk_ms, keyed_ms, bare_ms) =
        (figure("sdkMs"), figure("fetchWithKeyMs"), figure("fetchMs"));
    let note = format!("median of {calls} sequential calls, interleaved");
    Ok(vec![
        Row::new("message.create via the SDK", sdk_ms, "ms", note.clone()),
        Row::new(
            "message.create via bare fetch + Idempotency-Key",
            keyed_ms,
            "ms",
            note.clone(),
        ),
        Row::new("message.create via bare fetch", bare_ms, "ms", note),
        Row::new(
            "SDK overhead vs bare fetch + Idempotency-Key",
            sdk_ms - keyed_ms,
            "ms",
            "the client's own cost",
        ),
        Row::new(
            "SDK overhead vs bare fetch",
            sdk_ms - bare_ms,
            "ms",
            "client cost plus the server keeping the generated key",
        ),
    ])
}
