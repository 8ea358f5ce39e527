//! The recordings the REST API knows: every `recording.json` under the recordings directory
//! (read once at start, so recordings of earlier runs are listed too) plus what the recorder
//! thread writes while this server runs. Held in memory behind a mutex that only the recorder
//! thread and REST handlers take, never the SFU.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde_json::Value;

/// Recording metadata by id.
pub(crate) struct Catalog {
    dir: PathBuf,
    entries: Mutex<HashMap<String, Value>>,
}

impl Catalog {
    /// Opens (creating it if needed) `dir` and reads the `recording.json` of each of its
    /// subdirectories. A recording still `in-progress` on disk was cut short by a crash: it
    /// is listed as finished, `ended_by: "interrupted"`.
    pub(crate) fn open(dir: &Path) -> std::io::Result<Catalog> {
        std::fs::create_dir_all(dir)?;
        let mut entries = HashMap::new();
        for e in std::fs::read_dir(dir)?.flatten() {
            let p = e.path().join("recording.json");
            let Ok(text) = std::fs::read(&p) else {
                continue;
            };
            let Ok(mut v) = serde_json::from_slice::<Value>(&text) else {
                continue;
            };
            let Some(id) = v["id"].as_str().map(str::to_owned) else {
                continue;
            };
            if e.file_name().to_str() != Some(id.as_str()) {
                continue; // Not one of ours.
            }
            if v["status"] == "in-progress" {
                v["status"] = "finished".into();
                v["ended_by"] = "interrupted".into();
            }
            entries.insert(id, v);
        }
        Ok(Catalog {
            dir: dir.to_owned(),
            entries: Mutex::new(entries),
        })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Value>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds or replaces a recording's metadata (keyed by its `id`).
    pub(crate) fn put(&self, meta: Value) {
        if let Some(id) = meta["id"].as_str() {
            self.lock().insert(id.to_owned(), meta);
        }
    }

    pub(crate) fn get(&self, id: &str) -> Option<Value> {
        self.lock().get(id).cloned()
    }

    /// Newest first (by `start_ts`, then id), optionally of one room, at most `limit`.
    pub(crate) fn list(&self, room: Option<&str>, limit: usize) -> (usize, Vec<Value>) {
        let mut all: Vec<Value> = self
            .lock()
            .values()
            .filter(|v| room.is_none_or(|r| v["room_name"] == r))
            .cloned()
            .collect();
        all.sort_by(|a, b| {
            let k = |v: &Value| {
                (
                    v["start_ts"].as_u64().unwrap_or(0),
                    v["id"].as_str().unwrap_or("").to_owned(),
                )
            };
            k(b).cmp(&k(a))
        });
        let total = all.len();
        all.truncate(limit);
        (total, all)
    }

    /// The path of file `name` of recording `id`, if the metadata lists it (`mix.ogg` or a
    /// track's file): nothing else under the directory is ever served.
    pub(crate) fn file(&self, id: &str, name: &str) -> Option<PathBuf> {
        let v = self.get(id)?;
        let listed = v["mix"]["file"] == name
            || v["tracks"]
                .as_array()
                .is_some_and(|l| l.iter().any(|t| t["file"] == name));
        listed.then(|| self.dir.join(id).join(name))
    }

    /// Forgets a finished recording and deletes its directory. `Err` names why not.
    pub(crate) fn delete(&self, id: &str) -> Result<Value, &'static str> {
        let mut e = self.lock();
        let Some(v) = e.get(id) else {
            return Err("not-found");
        };
        if v["status"] == "in-progress" {
            return Err("in-progress");
        }
        let v = e.remove(id).unwrap_or_default();
        drop(e);
        let _ = std::fs::remove_dir_all(self.dir.join(id));
        Ok(v)
    }
}
