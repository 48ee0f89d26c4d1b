//! `gridstore history`: the ingest history and notes, and adding a note.

use crate::engine::{IngestRecord, Note, Store, WriteKind};
use crate::format::short_number;

/// Prints the ingest history with the notes under the ingests they are
/// about (or as JSON).
///
/// # Errors
/// A damaged history, or I/O.
pub fn print_history(store: &Store, json: bool) -> anyhow::Result<()> {
    let ingests = store.ingest_history()?;
    let notes = store.notes()?;
    if json {
        let doc = serde_json::json!({ "ingests": ingests, "notes": notes });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    if ingests.is_empty() && notes.is_empty() {
        println!("no ingests recorded");
        return Ok(());
    }
    for note in notes.iter().filter(|n| n.ingest.is_none()) {
        println!("note {}: {}", note.written, note.text);
    }
    for (i, record) in ingests.iter().enumerate() {
        print_ingest(i as u64 + 1, record);
        for note in notes.iter().filter(|n| n.ingest == Some(i as u64 + 1)) {
            print_note(note);
        }
    }
    Ok(())
}

fn print_ingest(number: u64, r: &IngestRecord) {
    match r.kind {
        WriteKind::Ingest => println!("#{number}  {}  {}", r.finished, r.source),
        WriteKind::Clear => println!("#{number}  {}  cleared", r.finished),
    }
    let [x0, y0, x1, y1] = r.extent.map(short_number);
    let instant = r
        .instant
        .as_ref()
        .map_or_else(String::new, |i| format!(", at {i}"));
    println!(
        "    {} cells{}{instant}, extent {x0},{y0},{x1},{y1}",
        r.cells,
        if r.warped { " (warped)" } else { "" },
    );
    let source = match r.kind {
        WriteKind::Ingest => format!("; source {} bytes, {}", r.bytes, r.checksum),
        WriteKind::Clear => String::new(),
    };
    println!(
        "    {} base {}, {} pyramid {}, {:.1} s{source}; gridstore {}",
        r.base_chunks,
        plural(r.base_chunks, "chunk"),
        r.pyramid_chunks,
        plural(r.pyramid_chunks, "chunk"),
        r.seconds,
        r.version
    );
}

/// `word` for one, `words` for any other count.
fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        word.to_string()
    } else {
        format!("{word}s")
    }
}

fn print_note(note: &Note) {
    println!("    note {}: {}", note.written, note.text);
}
