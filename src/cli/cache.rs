//! `gridstore cache`: list or clear the function cache.

use super::args::CacheAction;
use crate::engine::{ClearFilter, FunctionCache};
use anyhow::Context as _;
use std::time::Duration;

/// The user's function cache, or `None` (with a warning printed) when it
/// cannot be opened: a command then runs without it.
pub fn open_or_warn() -> Option<FunctionCache> {
    match FunctionCache::open_default() {
        Ok(cache) => Some(cache),
        Err(e) => {
            eprintln!("warning: running without the function cache ({e})");
            None
        }
    }
}

/// Runs a `gridstore cache` action.
///
/// # Errors
/// A cache that cannot be opened or read, or bad options.
pub fn run(action: &CacheAction) -> anyhow::Result<()> {
    let cache = FunctionCache::open_default().context("cannot open the function cache")?;
    let location = cache.storage().location();
    match action {
        CacheAction::List { json } => {
            let entries = cache.entries()?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&entries)?);
                return Ok(());
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            for e in &entries {
                println!(
                    "{:<10} {:>8} ago  {:>9}  {}",
                    e.function,
                    age((now - e.created).max(0.0)),
                    crate::format::human_bytes(e.bytes),
                    crate::engine::catalogue::cache::canonical(&e.args)
                );
            }
            let total: u64 = entries.iter().map(|e| e.bytes).sum();
            println!(
                "{} entries, {} in {location}",
                entries.len(),
                crate::format::human_bytes(total)
            );
        }
        CacheAction::Clear {
            older_than,
            function,
            args,
        } => {
            let older_than = older_than
                .as_deref()
                .map(|t| {
                    let seconds = crate::engine::grid::time::parse_step(t)?;
                    let seconds = u64::try_from(seconds)
                        .map_err(|_| anyhow::anyhow!("--older-than '{t}' is negative"))?;
                    anyhow::Ok(Duration::from_secs(seconds))
                })
                .transpose()?;
            let args = args
                .as_deref()
                .map(|a| {
                    let v: serde_json::Value = serde_json::from_str(a)
                        .with_context(|| format!("--args '{a}' is not JSON"))?;
                    anyhow::ensure!(v.is_object(), "--args '{a}' is not a JSON object");
                    Ok(v)
                })
                .transpose()?;
            let filter = ClearFilter {
                function: function.clone(),
                older_than,
                args,
            };
            let removed = cache.clear(&filter)?;
            println!("removed {removed} cached results from {location}");
        }
    }
    Ok(())
}

/// `45 s`, `12 min`, `5 h`, `3 d`.
fn age(seconds: f64) -> String {
    match seconds {
        s if s < 120.0 => format!("{s:.0} s"),
        s if s < 7200.0 => format!("{:.0} min", s / 60.0),
        s if s < 172_800.0 => format!("{:.0} h", s / 3600.0),
        s => format!("{:.0} d", s / 86_400.0),
    }
}
