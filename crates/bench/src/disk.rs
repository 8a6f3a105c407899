//! The disk's own commit latency: what every durable ingestion waits for at least once.
//!
//! An accepted event is answered only after the database's log is on disk (an fdatasync of
//! SQLite's WAL, PostgreSQL's commit flush). This writes about what one commit writes, then
//! fdatasyncs it, at the latency runs' rate, in the directory the benchmark's databases live in
//! — the disk's floor under the ingestion latency, measured beside it as the loopback is.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Bytes written before each fdatasync: about one single-event commit's WAL frames.
const COMMIT_BYTES: usize = 16 * 1024;
/// The file is rewritten from its start past this size, as a WAL is after a checkpoint.
const FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Latency of each of `per_s × secs` write-and-fdatasync pairs, paced at `per_s`, each from
/// the moment it was due (as the load generator's open loop measures a request): a stall
/// counts once for every commit that would have arrived during it, as it does for requests.
pub fn commit_latencies(dir: &Path, per_s: u32, secs: u64) -> std::io::Result<Vec<Duration>> {
    let path = dir.join(format!("lwh-bench-disk-{}", std::process::id()));
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)?;
    let block = vec![0x5a_u8; COMMIT_BYTES];
    let count = u64::from(per_s) * secs;
    let mut latencies = Vec::with_capacity(count as usize);
    let started = Instant::now();
    let mut offset = 0;
    let result = (0..count).try_for_each(|i| {
        let due = started + Duration::from_secs_f64(i as f64 / f64::from(per_s));
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        file.write_all_at(&block, offset)?;
        file.sync_data()?;
        latencies.push(due.elapsed());
        offset = (offset + COMMIT_BYTES as u64) % FILE_BYTES;
        Ok(())
    });
    let _ = std::fs::remove_file(&path);
    result.map(|()| latencies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_commit_is_timed_from_when_it_was_due_and_the_file_is_removed() {
        let dir = std::env::temp_dir().join(format!("lwh-bench-disk-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let started = Instant::now();
        let latencies = commit_latencies(&dir, 50, 1).unwrap();
        assert_eq!(latencies.len(), 50);
        assert!(
            started.elapsed() >= Duration::from_millis(980),
            "paced at 50 a second"
        );
        assert!(latencies.iter().all(|l| *l < Duration::from_secs(5)));
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "probe file left"
        );
        std::fs::remove_dir(&dir).unwrap();
    }
}
