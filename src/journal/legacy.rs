//! Copies kept by version 0.1 of this plugin (before the journal), found
//! after an upgrade: `DATA_DIR/logs/<id>/` held `current.log` and rotated
//! `<seq>.log` / `<seq>.sz` files of plain FIFO frames. Each becomes a
//! journal with its lines marked delivered (that version had shipped them,
//! or had already given up on them), so `docker logs` still shows them.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::layout::format_cursor;
use super::record::{self, SEGMENT_MAGIC, SegmentFile};
use super::{CURSOR_FILE, KEEP_MARKER, write_atomically};
use crate::frame::{Frame, FrameDecoder};
use crate::protocol::short_id;

/// Converts every copy under `legacy` (`DATA_DIR/logs`) into a journal under
/// `journals` (`DATA_DIR/journal`), then deletes it. Returns how many were
/// converted. Blocking; runs once at startup.
pub fn migrate(legacy: &Path, journals: &Path) -> usize {
    let Ok(entries) = fs::read_dir(legacy) else {
        return 0;
    };
    let mut converted = 0;
    for entry in entries.flatten() {
        let dir = entry.path();
        let id = entry.file_name().to_string_lossy().into_owned();
        // A real directory (a link is not followed), with a container's name.
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if !is_dir || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            continue;
        }
        let target = journals.join(&id);
        if target.exists() {
            tracing::warn!(id = %short_id(&id), "a copy from plugin version 0.1 is superseded by this container's journal; deleting it");
        } else {
            match convert(&dir, &target) {
                Ok(lines) => {
                    converted += 1;
                    tracing::info!(id = %short_id(&id), lines, "converted a copy from plugin version 0.1 into a journal");
                }
                Err(err) => {
                    let _ = fs::remove_dir_all(&target);
                    tracing::warn!(id = %short_id(&id), error = %err, "cannot convert a copy from plugin version 0.1; deleting it");
                }
            }
        }
        let _ = fs::remove_dir_all(&dir);
    }
    let _ = fs::remove_dir(legacy);
    converted
}

/// The old files of one container, oldest first.
fn old_files(dir: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<(u64, PathBuf)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let seq = name
                .strip_suffix(".sz")
                .or_else(|| name.strip_suffix(".log"))?
                .parse::<u64>()
                .ok()?;
            Some((seq, e.path()))
        })
        .collect();
    rotated.sort();
    rotated.dedup_by_key(|(seq, _)| *seq);
    let mut files: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    files.push(dir.join("current.log"));
    files
}

fn convert(dir: &Path, target: &Path) -> io::Result<u64> {
    fs::create_dir_all(target)?;
    let mut segment = File::create(SegmentFile::raw(target, 0))?;
    segment.write_all(SEGMENT_MAGIC)?;
    let mut seq = 0u64;
    let mut records = Vec::new();
    for path in old_files(dir) {
        // Only regular files, never through a link, never a FIFO's wait;
        // read in blocks (a compressed file may expand to far more).
        let Ok(file) = crate::files::open_data_file(&path) else {
            continue; // a missing or damaged old file: the rest is kept
        };
        let mut source: Box<dyn Read> = if path.extension().is_some_and(|e| e == "sz") {
            Box::new(snap::read::FrameDecoder::new(file))
        } else {
            Box::new(file)
        };
        let mut decoder = FrameDecoder::new();
        let mut block = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = match source.read(&mut block) {
                Ok(0) | Err(_) => break, // the end, or damage: what came before is kept
                Ok(n) => n,
            };
            total += n as u64;
            decoder.extend(&block[..n]);
            while let Some(frame) = decoder.next() {
                if let Frame::Entry { wire, .. } = frame {
                    record::encode(seq, &wire[4..], &mut records);
                    seq += 1;
                }
            }
            segment.write_all(&records)?;
            records.clear();
            if total > record::MAX_SEGMENT_FILE {
                break; // more than any copy of that version held
            }
        }
    }
    segment.sync_all()?;
    write_atomically(
        &target.join(CURSOR_FILE),
        format_cursor([seq, seq], seq).as_bytes(),
    )?;
    if dir.join(KEEP_MARKER).exists() {
        File::create(target.join(KEEP_MARKER))?;
    }
    Ok(seq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::encode_frame;
    use crate::proto::logdriver::LogEntry;
    use bytes::Bytes;

    fn frames(lines: &[&str]) -> Vec<u8> {
        lines
            .iter()
            .enumerate()
            .flat_map(|(i, l)| {
                encode_frame(&LogEntry {
                    source: "stdout".into(),
                    time_nano: i as i64,
                    line: Bytes::copy_from_slice(l.as_bytes()),
                    ..LogEntry::default()
                })
                .to_vec()
            })
            .collect()
    }

    #[test]
    fn an_old_copy_becomes_a_delivered_journal() {
        let data = tempfile::tempdir().unwrap();
        let old = data.path().join("logs/abc123");
        fs::create_dir_all(&old).unwrap();
        let mut sz =
            snap::write::FrameEncoder::new(File::create(old.join("0000000001.sz")).unwrap());
        sz.write_all(&frames(&["one", "two"])).unwrap();
        drop(sz);
        fs::write(old.join("0000000002.log"), frames(&["three"])).unwrap();
        fs::write(old.join("current.log"), frames(&["four"])).unwrap();
        File::create(old.join("keep")).unwrap();

        let journals = data.path().join("journal");
        assert_eq!(migrate(&data.path().join("logs"), &journals), 1);
        assert!(!data.path().join("logs").exists(), "the old copy is gone");
        let dir = journals.join("abc123");
        assert!(dir.join(KEEP_MARKER).exists());
        assert_eq!(
            fs::read_to_string(dir.join(CURSOR_FILE)).unwrap(),
            "v1 4 4 4\n"
        );
        let segments = record::list_segments(&dir);
        let mut reader = record::SegmentReader::open(&segments[0]).unwrap();
        let mut seqs = Vec::new();
        while let Some(record) = reader.next().unwrap() {
            seqs.push(record.seq);
        }
        assert_eq!(seqs, [0, 1, 2, 3]);
    }
}
