//! The head witness: a small file beside sled's own, `chronik-head`, that
//! records the head after every acknowledged write.
//!
//! sled recovers from damage to its files by going back to an earlier
//! consistent state; without a witness, a store that lost its newest records
//! would look like a smaller, healthy store. On open, a witness ahead of the
//! store's head (or disagreeing on its hash) means records were lost, and the
//! store is refused. A witness behind the head is normal after a crash
//! between sled's flush and the witness write; it is brought up to date.

use std::io::Write;
use std::path::Path;

use super::record::{hash_from_hex as unhex, hash_to_hex as hex};
use super::{Hash, Head};
use crate::error::{Error, Result};

/// The witness file's name inside the store directory.
pub const FILE: &str = "chronik-head";
const MAGIC: &str = "chronik-head 1";

/// What the witness says: the head's seq and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Witness {
    pub seq: u64,
    pub hash: Hash,
}

/// Reads the witness; `None` if there is none yet.
pub fn read(dir: &Path) -> Result<Option<Witness>> {
    let path = dir.join(FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Io {
                action: "read",
                path,
                source,
            });
        }
    };
    let mut lines = text.lines();
    let parsed = match (lines.next(), lines.next(), lines.next()) {
        (Some(MAGIC), Some(seq), Some(hash)) => seq
            .parse()
            .ok()
            .zip(unhex(hash))
            .map(|(seq, hash)| Witness { seq, hash }),
        _ => None,
    };
    parsed
        .map(Some)
        .ok_or_else(|| Error::Corrupt(format!("the head witness {} is unreadable", path.display())))
}

/// Writes the witness for `head`, durably: a temporary file, synced, then
/// renamed over the old one, then the directory synced.
pub fn write(dir: &Path, head: &Head) -> Result<()> {
    let path = dir.join(FILE);
    let temporary = dir.join(format!("{FILE}.tmp"));
    let io = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    };
    let mut file = std::fs::File::create(&temporary).map_err(io("write", &temporary))?;
    writeln!(file, "{MAGIC}\n{}\n{}", head.seq, hex(&head.hash))
        .map_err(io("write", &temporary))?;
    file.sync_all().map_err(io("sync", &temporary))?;
    std::fs::rename(&temporary, &path).map_err(io("replace", &path))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("sync", dir))?;
    Ok(())
}

/// Compares the witness with the store's head: refuses a store that lost
/// records, and says whether the witness needs rewriting.
pub fn check(dir: &Path, head: &Head) -> Result<bool> {
    let Some(witness) = read(dir)? else {
        return Ok(true);
    };
    if witness.seq > head.seq || (witness.seq == head.seq && witness.hash != head.hash) {
        return Err(Error::Corrupt(format!(
            "records were lost: the store last held {} records (head hash {}), but its files now hold {}; restore it from a backup or an export",
            witness.seq,
            &hex(&witness.hash)[..16],
            head.seq
        )));
    }
    Ok(witness.seq < head.seq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn head(seq: u64, hash: u8) -> Head {
        Head {
            seq,
            hash: [hash; 32],
            recorded_at: DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_witness_round_trips_and_judges_the_head() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        assert!(check(dir.path(), &head(0, 0)).unwrap());
        write(dir.path(), &head(5, 7)).unwrap();
        assert_eq!(
            read(dir.path()).unwrap(),
            Some(Witness {
                seq: 5,
                hash: [7; 32]
            })
        );
        assert!(!check(dir.path(), &head(5, 7)).unwrap());
        assert!(check(dir.path(), &head(6, 1)).unwrap());
        let lost = check(dir.path(), &head(4, 7)).unwrap_err().to_string();
        assert!(
            lost.contains("records were lost: the store last held 5 records"),
            "{lost}"
        );
        assert!(check(dir.path(), &head(5, 8)).is_err());
        std::fs::write(dir.path().join(FILE), "garbage").unwrap();
        assert!(
            read(dir.path())
                .unwrap_err()
                .to_string()
                .contains("unreadable")
        );
    }
}
