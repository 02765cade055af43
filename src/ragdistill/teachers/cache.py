"""An append-only JSON-lines store of teacher replies, keyed by ``prompt_hash``, so that a killed
annotation run resumes without asking the teacher again.

Each ``put`` writes one complete line with a single ``write`` on a file opened for appending, then
flushes and fsyncs it. A run killed mid-write can leave at most a torn last line (no final newline, or
not valid JSON); opening the cache ignores it and truncates it away. A bad line anywhere else is real
corruption and raises ``DataError`` naming the line.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from ragdistill.io import DataError


class AnnotationCache:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._records: dict[str, dict] = {}
        self._lock = threading.Lock()
        self.truncated_bytes = 0
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            self.path.touch()
            return
        raw = self.path.read_bytes()
        lines = raw.split(b"\n")  # the last item is b"" when the file ends with a newline
        keep = 0  # bytes of well-formed lines
        for number, line in enumerate(lines, start=1):
            is_last = number == len(lines) or (number == len(lines) - 1 and lines[-1] == b"")
            complete = number < len(lines)  # followed by a newline
            if not line.strip():
                keep += len(line) + (1 if complete else 0)
                continue
            try:
                record = json.loads(line.decode("utf-8"))
                if not isinstance(record, dict) or not isinstance(record.get("key"), str):
                    raise ValueError("not a record with a key")
            except (ValueError, UnicodeDecodeError) as err:
                if is_last:
                    break  # torn by a kill mid-write: drop it
                raise DataError(f"{self.path}:{number}: corrupt cache line ({err})") from None
            if not complete:
                break  # valid JSON but no newline: the write did not finish
            self._records[record["key"]] = record
            keep += len(line) + 1
        if keep < len(raw):
            self.truncated_bytes = len(raw) - keep
            with open(self.path, "r+b") as handle:
                handle.truncate(keep)
                handle.flush()
                os.fsync(handle.fileno())

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, key: str) -> bool:
        return key in self._records

    def get(self, key: str) -> dict | None:
        return self._records.get(key)

    def put(self, key: str, record: dict) -> None:
        """Store ``record`` under ``key`` durably (one line, flushed and fsynced) before returning."""
        row = {"key": key, **{k: v for k, v in record.items() if k != "key"}}
        data = (json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                written = os.write(fd, data)
                while written < len(data):  # a short write (rare; signals) continues where it stopped
                    written += os.write(fd, data[written:])
                os.fsync(fd)
            finally:
                os.close(fd)
            self._records[key] = row


def seed_from_annotations(cache: AnnotationCache, rows: list[dict]) -> int:
    """Put into ``cache`` the replies that published annotation rows carry (``meta.prompt_hash`` and
    ``meta.reply``) and that it lacks, so a fresh clone reuses the committed teacher outputs instead of
    asking the teacher again. Rows without a reply (older files, PaLM pointers) are skipped. Returns how
    many replies were added."""
    added = 0
    for row in rows:
        meta = row.get("meta") or {}
        key, reply = meta.get("prompt_hash"), meta.get("reply")
        if not isinstance(key, str) or not isinstance(reply, str) or key in cache:
            continue
        cache.put(key, {"model": meta.get("teacher"), "text": reply, "prompt_tokens": meta.get("prompt_tokens", 0),
                        "completion_tokens": meta.get("completion_tokens", 0), "seconds": meta.get("seconds", 0.0),
                        "seeded_from": "published annotations"})
        added += 1
    return added
