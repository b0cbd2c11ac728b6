"""`make demo`: the service on embedded defaults (a private PostgreSQL in SYNC_DATA_DIR)."""

from __future__ import annotations

import sys

from sync_service.cli import main

if __name__ == "__main__":
    print("demo: starting sync-service on the embedded PostgreSQL; Ctrl-C stops it", flush=True)
    sys.exit(main(["run"]))
