//! `gridstore series`: a point's or an area's values over time, per
//! instant or aggregated per period, as text, CSV or JSON.

use super::args::SeriesArgs;
use crate::engine::grid::period::{Period, PeriodValue, TimeLevel, by_period};
use crate::engine::grid::time::format_instant;
use crate::engine::{AreaValue, Element, Resampling, Store};
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
    let rows = match (args.at, args.bbox) {
        (_, Some(bbox)) => {
            let Some(window) = grid.cells_centred_in(args.level, &bbox) else {
                bail!(
                    "{location}: no cell of level {} has its centre in {bbox}",
                    args.level
                );
            };
            with_dtype!(store.structure().dtype, T => area_rows::<T>(store, args, &instants, &window, band))?
        }
        (Some(point), None) => point_rows(store, args, &instants, point, band)?,
        (None, None) => bail!("give --at X,Y or --bbox MINX,MINY,MAXX,MAXY"),
    };
    println!("{}", rows.render(args.json, args.csv));
    Ok(())
}

/// An area's series: per instant, the aggregate over its cells; per
/// period, the aggregate over its cells of the period's map (stored, or
/// folded from the instants inside it as a stored one is).
fn area_rows<T: Element>(
    store: &Store,
    args: &SeriesArgs,
    instants: &[(u32, i64)],
    window: &crate::engine::Window,
    band: usize,
) -> anyhow::Result<Rows> {
    let location = store.location();
    let failed = |e: crate::engine::EngineError| anyhow::anyhow!("{location}: {e}");
    let Some(period) = args.period else {
        let values = instants
            .par_iter()
            .map(|&(t, _)| Ok(store.area_value::<T>(t, args.level, window, band)?.value))
            .collect::<Result<Vec<_>, _>>()
            .map_err(failed)?;
        return Ok(Rows::Instants(
            instants.iter().map(|(_, i)| *i).zip(values).collect(),
        ));
    };
    let mut starts: Vec<i64> = instants.iter().map(|(_, i)| period.start(*i)).collect();
    starts.dedup();
    let rows = starts
        .par_iter()
        .map(|&start| {
            let (cells, _) = store.period_cells::<T>(period, start, args.level, window)?;
            let AreaValue { value, valid } = store.aggregate_area(&cells, band);
            let held = instants
                .iter()
                .filter(|(_, i)| period.start(*i) == start)
                .count();
            Ok(PeriodValue {
                start,
                instants: held,
                valid,
                value,
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(failed)?;
    let stored = TimeLevel::of(period).is_some_and(|l| store.period_maps(l).is_some());
    Ok(Rows::Area(period, rows, stored))
}

/// A point's series: its cell's value at each instant, or per period
/// aggregated from them.
fn point_rows(
    store: &Store,
    args: &SeriesArgs,
    instants: &[(u32, i64)],
    (x, y): (f64, f64),
    band: usize,
) -> anyhow::Result<Rows> {
    let location = store.location();
    if store.grid().locate(args.level, x, y).is_none() {
        bail!("{location}: {x},{y} lies outside the store's grid");
    }
    let values = instants
        .par_iter()
        .map(|&(t, _)| {
            with_dtype!(store.structure().dtype, T => store.value_at::<T>(t, args.level, (x, y), band, Resampling::Nearest))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{location}: {e}"))?;
    let series: Vec<(i64, Option<f64>)> = instants.iter().map(|(_, i)| *i).zip(values).collect();
    Ok(match args.period {
        Some(period) => Rows::Periods(
            period,
            by_period(&series, period, store.structure().aggregate),
        ),
        None => Rows::Instants(series),
    })
}

/// What is printed: each instant, or each period (at a point: its valid
/// instants; over an area: its cells with data, and whether the period's
/// maps are stored).
enum Rows {
    Instants(Vec<(i64, Option<f64>)>),
    Periods(Period, Vec<PeriodValue>),
    Area(Period, Vec<PeriodValue>, bool),
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
            Self::Periods(period, values) | Self::Area(period, values, _) => values
                .iter()
                .map(|p| (period.label(p.start), p.start, p.value, p.instants, p.valid))
                .collect(),
        }
    }

    fn render(&self, json: bool, csv: bool) -> String {
        let rows = self.rows();
        let value = |v: Option<f64>| v.map_or_else(String::new, |v| v.to_string());
        // Over an area, "valid" counts cells with data.
        let valid_name = match self {
            Self::Area(..) => "cells",
            _ => "valid",
        };
        if json {
            let items: Vec<serde_json::Value> = rows
                .iter()
                .map(|(label, start, v, n, valid)| {
                    let mut item = serde_json::json!({
                        "period": label,
                        "start": format_instant(*start),
                        "value": v,
                        "instants": n,
                    });
                    item[valid_name] = serde_json::json!(valid);
                    item
                })
                .collect();
            return serde_json::Value::Array(items).to_string();
        }
        if csv {
            let mut out = vec![format!("period,start,value,instants,{valid_name}")];
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
                    Self::Area(_, _, stored) => format!(
                        "{label:width$}  {v}  ({n} instants; {valid} cells with data; {})",
                        if *stored {
                            "the stored map"
                        } else {
                            "computed"
                        }
                    ),
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}
