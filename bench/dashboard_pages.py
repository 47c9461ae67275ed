"""Dashboard server time (not a test): prints a table.

The overview, log-search and agent pages, rendered for a logged-in person, over `--rows` stored records (bulk-inserted
straight into SQLite by backend_ingest.fill, as that benchmark does). Server time is the access log's
`duration_ms` of each request (the time the app spent, without the client); p50 and p99 over `--repeats`.

    uv run python bench/dashboard_pages.py [--rows 1000000] [--repeats 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import orjson
from backend_ingest import fill  # bench/ is the script's folder, so on sys.path

from hashed_backend.testing import LocalBackend

PAGES = {
    "overview /": "/",
    "logs, no filter": "/logs",
    "logs, tool + decision": "/logs?tool=delete_records&effect=deny",
    "logs, agent + time range": "/logs?agent=bulk-3&since=1970-01-01T00:00Z&until=2100-01-01T00:00Z",
    "logs, text": "/logs?q=acct-42",
    "agent page (windows)": "/agents/{agent}",
}
# The agent page counts window use from stored decisions: give it a live policy with a sum window and a rate.
WINDOWED = """version: 1
default: deny
rules:
  - id: transfers
    tools: [transfer_money]
    effect: allow
    limits:
      amount: {max: 1000, window: {per: 1d, max_sum: 50000}}
    rate: {per: 1h, max_calls: 1000}
  - id: reads
    tools: [read_file, search_web, send_email]
    effect: allow
"""


def server_ms(log: Path, path: str, since: int) -> list[float]:
    """Durations of GET `path` requests logged after byte offset `since`."""
    out = []
    with log.open("rb") as handle:
        handle.seek(since)
        for line in handle:
            if b'"hashed_backend.access"' not in line:
                continue
            entry = orjson.loads(line)
            if entry.get("method") == "GET" and entry.get("path") == path.split("?")[0]:
                out.append(float(entry["duration_ms"]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    burst = {"HASHED_BACKEND_AUTH_BURST_PER_IP": "1000"}  # setup registers agents in a burst
    with tempfile.TemporaryDirectory() as tmp, LocalBackend(Path(tmp), env=burst) as server:
        started = time.perf_counter()
        admin, agents = fill(server.url, "sqlite", None, Path(tmp) / "data", args.rows)
        admin.put("/v1/policies/org", json={"yaml": WINDOWED}).raise_for_status()
        print(f"({args.rows:,} rows bulk-inserted in {time.perf_counter() - started:.0f} s)")
        email, password = "bench-viewer@example.com", "benchmark password"
        admin.post("/v1/users", json={"email": email, "password": password, "role": "admin"}).raise_for_status()
        with httpx.Client(base_url=server.url, timeout=120) as person:
            person.post("/v1/auth/login", json={"email": email, "password": password}).raise_for_status()
            print(f"load average before: {os.getloadavg()[0]:.2f}")
            print("| page | rows | server p50 ms | server p99 ms | client p50 ms |\n|---|---:|---:|---:|---:|")
            for name, template in PAGES.items():
                path = template.format(agent=agents[3])  # bulk-3: a tenth of the rows, all in the windows
                person.get(path).raise_for_status()  # warm the caches
                offset = server.log.stat().st_size
                client = []
                for _ in range(args.repeats):
                    begin = time.perf_counter()
                    person.get(path).raise_for_status()
                    client.append((time.perf_counter() - begin) * 1000)
                server_side = server_ms(server.log, path, offset)
                p99 = statistics.quantiles(server_side, n=100)[98] if len(server_side) > 1 else server_side[0]
                print(
                    f"| {name} | {args.rows:,} | {statistics.median(server_side):.1f} | {p99:.1f} "
                    f"| {statistics.median(client):.1f} |"
                )
            print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
