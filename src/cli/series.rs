//! `gridstore series`: a point's values over time, per instant or
//! aggregated per period, as text, CSV or JSON.

use super::args::SeriesArgs;
use crate::engine::grid::period::{Period, PeriodValue, by_period};
use crate::engine::grid::time::format_instant;
use crate::engine::{Resampling, Store};
use crate::with_dtype;
use anyhow::bail;
use rayon::prelude::*;

/// Reads and prints the series `args` asks for.
///
/// # Errors
/// A store without a time axis, a point outside the grid, a level or band
/// the store does not have, or a chunk that cannot be read; one line each.
pub fn print(store: &Store, args: &SeriesArgs) -> anyhow::Result<()> {
    let location = store.location();
    if store.structure().time.is_none() {
        bail!("{location}: the store has no time axis, so no series to read");
    }
    let grid = store.grid();
    if args.level > grid.top_level() {
        bail!(
            "{location}: no level {} (the store has levels 0 to {})",
            args.level,
            grid.top_level()
        );
    }
    let bands = store.structure().band_count();
    let band = args.band as usize - 1;
    if band >= bands {
        bail!("{location}: no band {} (the store has {bands})", args.band);
    }
    let (x, y) = args.at;
    if grid.locate(args.level, x, y).is_none() {
        bail!("{location}: {x},{y} lies outside the store's grid");
    }
    let (from, to) = args.time_range.unwrap_or((i64::MIN, i64::MAX));
    let instants = store.instants_between(from, to);
    if instants.is_empty() {
        let all = store.instants_between(i64::MIN, i64::MAX);
        match (all.first(), all.last()) {
            (Some((_, a)), Some((_, b))) => bail!(
                "{location}: no stored instants from {} to {}: the store holds {} from {} to {}",
                format_instant(from),
                format_instant(to),
                all.len(),
                format_instant(*a),
                format_instant(*b)
            ),
            _ => bail!("{location}: the store holds no instants yet"),
        }
    }
    let values = instants
        .par_iter()
        .map(|&(t, _)| {
            with_dtype!(store.structure().dtype, T => store.value_at::<T>(t, args.level, (x, y), band, Resampling::Nearest))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{location}: {e}"))?;
    let series: Vec<(i64, Option<f64>)> = instants.iter().map(|(_, i)| *i).zip(values).collect();
    let rows = match args.period {
        Some(period) => Rows::Periods(
            period,
            by_period(&series, period, store.structure().aggregate),
        ),
        None => Rows::Instants(series),
    };
    println!("{}", rows.render(args.json, args.csv));
    Ok(())
}

/// What is printed: each instant, or each period.
enum Rows {
    Instants(Vec<(i64, Option<f64>)>),
    Periods(Period, Vec<PeriodValue>),
}

/// One printed row: its label, start, value, instants and valid ones.
type Row = (String, i64, Option<f64>, usize, usize);

impl Rows {
    fn rows(&self) -> Vec<Row> {
        match self {
            Self::Instants(series) => series
                .iter()
                .map(|&(i, v)| (format_instant(i), i, v, 1, usize::from(v.is_some())))
                .collect(),
            Self::Periods(period, values) => values
                .iter()
                .map(|p| (period.label(p.start), p.start, p.value, p.instants, p.valid))
                .collect(),
        }
    }

    fn render(&self, json: bool, csv: bool) -> String {
        let rows = self.rows();
        let value = |v: Option<f64>| v.map_or_else(String::new, |v| v.to_string());
        if json {
            let items: Vec<serde_json::Value> = rows
                .iter()
                .map(|(label, start, v, n, valid)| {
                    serde_json::json!({
                        "period": label,
                        "start": format_instant(*start),
                        "value": v,
                        "instants": n,
                        "valid": valid,
                    })
                })
                .collect();
            return serde_json::Value::Array(items).to_string();
        }
        if csv {
            let mut out = vec!["period,start,value,instants,valid".to_string()];
            out.extend(rows.iter().map(|(label, start, v, n, valid)| {
                format!(
                    "{label},{},{},{n},{valid}",
                    format_instant(*start),
                    value(*v)
                )
            }));
            return out.join("\n");
        }
        let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        rows.iter()
            .map(|(label, _, v, n, valid)| {
                let v = v.map_or_else(|| "nodata".to_string(), |v| v.to_string());
                match self {
                    Self::Instants(_) => format!("{label:width$}  {v}"),
                    Self::Periods(..) => format!("{label:width$}  {v}  ({valid} of {n} instants)"),
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}
