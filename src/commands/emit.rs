//! `emit`: report an event through the REST API, as the LMS would.

use std::process::ExitCode;

use anyhow::{bail, Context};
use lwh_app::Settings;

use crate::cli::EmitArgs;

/// POSTs the event and prints the answer's `data` on stdout.
pub async fn run(settings: &Settings, args: &EmitArgs) -> anyhow::Result<ExitCode> {
    let data: serde_json::Value =
        serde_json::from_str(&args.data).context("--data must be a JSON object")?;
    if !data.is_object() {
        bail!("--data must be a JSON object");
    }
    let base = args
        .url
        .clone()
        .unwrap_or_else(|| format!("http://{}", settings.listen));
    let mut body = serde_json::json!({"event": args.event, "data": data});
    if let Some(key) = &args.idempotency_key {
        body["idempotency_key"] = serde_json::Value::String(key.clone());
    }
    let client = reqwest::Client::builder().no_proxy().build()?;
    let response = client
        .post(format!("{}/api/v1/events", base.trim_end_matches('/')))
        .bearer_auth(&args.token)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("cannot reach {base}"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if status.is_success() {
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        println!("{}", parsed["data"]);
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("{status}: {text}");
        Ok(ExitCode::FAILURE)
    }
}
