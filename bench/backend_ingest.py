"""Backend ingest and query benchmark (not a test): prints a table.

1. POST /v1/logs/batch: batches of 100 real signed records (made by hashed-core's guard), verified and
   committed, from several agents at once (each agent's batches in chain order). Records/s and batch latency.
2. GET /v1/logs: one page out of 1,000,000 stored records (rows bulk-inserted straight into the database),
   with and without filters, and deep in the keyset pagination. p50 and p99 latency.

    uv run python bench/backend_ingest.py [--workers 1 2] [--records 24000] [--rows 1000000] [--skip-query]
    uv run python bench/backend_ingest.py --baseline DIR [DIR …]   # same-run A/B of ingest against other checkouts

With `--baseline DIR` (e.g. `git archive <rev> | tar -x -C DIR`), two backends run side by side, this checkout's
and DIR's code, and each run ships the same freshly made records to both, alternating which goes first (several
DIRs: one backend each, every run ships to all, the order rotating; one row per DIR). Besides
records/s, it reports the backend's CPU time per record (its processes' user + system time), which a busy
machine moves far less than throughput.

Ingest is measured once per `--workers` value (uvicorn worker processes; the app is stateless, so two use
both cores of a 2-core machine); queries run with the last one. The machine's load average (1 min) before
and after each ingest measurement is in the table: on a shared machine, compare figures taken at similar load.

PostgreSQL: a throw-away database is created next to $HASHED_TEST_DATABASE_URL
(default postgresql://postgres@127.0.0.1:5432/test) and dropped afterwards; --no-postgres skips it (--no-sqlite
skips SQLite).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import os
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import orjson

from hashed import Hashed, Identity
from hashed.shipping import registration_message, signed_headers

POLICY = """\
version: 1
default: deny
rules:
  - {id: small-transfers, tools: [transfer_money], effect: allow, limits: {amount: {max: 1000}}}
  - {id: email, tools: [send_email], effect: allow}
"""
BATCH = 100


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def backend(tmp: Path, database_url: str | None, workers: int, src: Path | None = None):
    """A backend process; `src`: a checkout whose backend and core code it runs instead (the A/B baseline)."""
    port = free_port()
    env = {
        **os.environ,
        **({"PYTHONPATH": f"{src}/backend/src{os.pathsep}{src}/hashed-core/src"} if src else {}),
        "HASHED_BACKEND_PORT": str(port),
        "HASHED_BACKEND_DATA_DIR": str(tmp / "data"),
        "HASHED_BACKEND_LOG_LEVEL": "warning",
        "HASHED_BACKEND_AUTH_BURST_PER_IP": "10000",
    }
    env.pop("HASHED_DATABASE_URL", None)
    if database_url:
        env["HASHED_DATABASE_URL"] = database_url
    tmp.mkdir(parents=True, exist_ok=True)
    log = (tmp / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "hashed_backend", "serve", "--workers", str(workers)], env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    _PIDS[url] = process.pid
    try:
        deadline = time.monotonic() + 180  # a loaded machine starts a backend in 10-30 s
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/ready", timeout=5).status_code == 200:
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError((tmp / "server.log").read_text())
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(30)
        log.close()


_PIDS: dict[str, int] = {}  # each running backend's process, by URL


def cpu_seconds(url: str) -> float:
    """CPU time (user + system) the backend at `url` has used so far, its worker processes included.

    Unlike records/s, it does not move with what else the machine runs (PostgreSQL's own processes not counted).
    """
    tick = os.sysconf("SC_CLK_TCK")
    pids = [_PIDS[url]]
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pids[0]}/task").iterdir():
            pids += [int(child) for child in (task / "children").read_text().split()]
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def make_records(home: Path, identity: Identity, name: str, count: int) -> list[dict]:
    home.mkdir(parents=True)
    with Hashed(home=home, identity=identity, policy=POLICY, agent=name, durability="background") as hashed:
        transfer = hashed.guard("transfer_money")(lambda to, amount: "ok")
        email = hashed.guard("send_email")(lambda to, body: "sent")
        i = 0
        while hashed.ledger.head()[0] < count:
            if i % 3 == 2:
                email("a@example.com", f"message {i}")
            else:
                transfer(f"acct-{i % 97}", (i * 37) % 1500)
            i += 1
            if i % 1000 == 0:
                hashed.flush()
        hashed.flush()
        return [r.to_json() for r in hashed.ledger.records(1, count)]


def setup_org(url: str) -> tuple[httpx.Client, str]:
    admin = httpx.Client(base_url=url, timeout=60)
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    admin.post("/v1/auth/signup", json={"email": email, "password": "benchmark password", "org_name": "bench"})
    fast = {"rate_per_s": 100_000}
    agent_key = admin.post("/v1/keys", json={"kind": "agent", "name": "bench", **fast}).json()["key"]
    admin_key = admin.post("/v1/keys", json={"kind": "admin", "name": "bench", **fast}).json()["key"]
    admin.headers["Authorization"] = f"Bearer {admin_key}"
    admin.cookies.clear()
    return admin, agent_key


def register(url: str, agent_key: str, identity: Identity, name: str) -> str:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {agent_key}"}, timeout=60) as client:
        chl = client.post("/v1/agents/challenge", json={"name": name, "public_key": identity.public_key}).json()
        sig = identity.sign(registration_message(chl["challenge"], name, identity.public_key)).hex()
        body = {"challenge_id": chl["id"], "name": name, "public_key": identity.public_key, "signature": sig}
        return str(client.post("/v1/agents/register", json=body).json()["id"])


Prepared = list[tuple[Identity, str, list[bytes]]]


def prepare(tmp: Path, agents: int, per_agent: int) -> Prepared:
    """Each agent's identity, name and batch bodies (made once: an A/B run ships the same records to both)."""
    prepared = []
    for n in range(agents):
        identity, name = Identity.generate(), f"bench-{n}"
        records = make_records(tmp / f"ledger-{uuid.uuid4().hex[:6]}", identity, name, per_agent)
        bodies = [orjson.dumps({"records": records[i : i + BATCH]}) for i in range(0, len(records), BATCH)]
        prepared.append((identity, name, bodies))
    return prepared


def ingest(
    url: str, tmp: Path, agents: int, per_agent: int, prepared: Prepared | None = None
) -> tuple[float, list[float]]:
    """Records/s over the whole run and the latency of each batch (seconds)."""
    _, agent_key = setup_org(url)
    jobs = []
    for identity, name, bodies in prepared or prepare(tmp, agents, per_agent):
        register(url, agent_key, identity, name)
        jobs.append((identity, bodies))
    latencies: list[float] = []

    def ship(job: tuple[Identity, list[bytes]]) -> None:
        identity, bodies = job
        with httpx.Client(base_url=url, timeout=120) as client:
            for body in bodies:
                headers = {
                    "Authorization": f"Bearer {agent_key}",
                    "Content-Type": "application/json",
                    **signed_headers(identity, "POST", "/v1/logs/batch", body),
                }
                started = time.perf_counter()
                response = client.post("/v1/logs/batch", content=body, headers=headers)
                latencies.append(time.perf_counter() - started)
                results = response.json()["results"]
                assert response.status_code == 200, response.text
                assert all(r["status"] == "stored" for r in results), response.text

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
        list(pool.map(ship, jobs))
    elapsed = time.perf_counter() - started
    return agents * per_agent / elapsed, latencies


def fill(
    url: str, database: str, database_url: str | None, data_dir: Path, rows: int
) -> tuple[httpx.Client, list[str]]:
    """Register 10 agents through the API, then bulk-insert `rows` records for them straight into the database."""
    admin, agent_key = setup_org(url)
    agent_ids = [register(url, agent_key, Identity.generate(), f"bulk-{n}") for n in range(10)]
    org_id = _org_of(database, database_url, data_dir, agent_ids[0])
    tools = ["transfer_money", "send_email", "read_file", "search_web", "delete_records"]
    rng = random.Random(7)
    now = time.time_ns() - rows * 1_000_000
    seqs = dict.fromkeys(agent_ids, 0)

    def row(i: int) -> tuple:
        agent = agent_ids[i % 10]
        seqs[agent] += 1
        tool = tools[rng.randrange(5)]
        effect = "deny" if rng.random() < 0.05 else "allow"
        nonce = os.urandom(16).hex()
        body = {
            "v": 1,
            "seq": seqs[agent],
            "kind": "decision",
            "tool": tool,
            "effect": effect,
            "nonce": nonce,
            "args": {"to": f"acct-{i % 997}", "amount": i % 1500},
            "ts": str(now + i * 1_000_000),
            "hash": os.urandom(32).hex(),
        }
        return (
            org_id,
            agent,
            seqs[agent],
            body["hash"],
            "decision",
            now + i * 1_000_000,
            tool,
            effect,
            nonce,
            orjson.dumps(body).decode(),
            now,
        )

    columns = "org_id, agent_id, seq, hash, kind, ts, tool, effect, nonce, raw, received_ns"
    if database == "sqlite":
        with contextlib.closing(sqlite3.connect(data_dir / "backend.db")) as conn:
            conn.execute("PRAGMA synchronous=OFF")
            for start in range(0, rows, 50_000):
                conn.executemany(
                    f"INSERT INTO records ({columns}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",  # noqa: S608
                    [row(i) for i in range(start, min(rows, start + 50_000))],
                )
                conn.commit()
            conn.execute("ANALYZE")
    else:
        import psycopg

        with psycopg.connect(database_url) as conn:
            with conn.cursor().copy(f"COPY records ({columns}) FROM STDIN") as copy:
                for i in range(rows):
                    copy.write_row(row(i))
            conn.execute("ANALYZE records")
    return admin, agent_ids


def _org_of(database: str, database_url: str | None, data_dir: Path, agent_id: str) -> str:
    if database == "sqlite":
        with contextlib.closing(sqlite3.connect(data_dir / "backend.db")) as conn:
            return str(conn.execute("SELECT org_id FROM agents WHERE id = ?", (agent_id,)).fetchone()[0])
    import psycopg

    with psycopg.connect(database_url) as conn:
        return str(conn.execute("SELECT org_id FROM agents WHERE id = %s", (agent_id,)).fetchone()[0])


def query(admin: httpx.Client, agent_ids: list[str], repeats: int) -> dict[str, list[float]]:
    deep = admin.get("/v1/logs", params={"limit": 1}).json()["items"][0]["id"] // 2
    cases = {
        "newest page (50)": {},
        "agent filter": {"agent": agent_ids[3]},
        "tool filter": {"tool": "search_web"},
        "effect=deny": {"effect": "deny"},
        "deep cursor (mid-table)": {"cursor": str(deep)},
    }
    out: dict[str, list[float]] = {}
    for name, params in cases.items():
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            response = admin.get("/v1/logs", params={"limit": 50, **params})
            times.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
            assert len(response.json()["items"]) == 50, response.text
        out[name] = times
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="uvicorn workers, one run each")
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--records", type=int, default=24_000, help="records per ingest run (all agents)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--skip-query", action="store_true")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only (e.g. one database per lock hold)")
    parser.add_argument(
        "--baseline",
        type=Path,
        nargs="+",
        help="checkouts of the code to compare with (e.g. `git archive <rev> | tar -x -C DIR`): ingest only, "
        "every backend running, runs alternating between them on the same records",
    )
    args = parser.parse_args()
    if args.baseline:
        ab(args)
        return
    databases: list[tuple[str, str | None]] = [] if args.no_sqlite else [("sqlite", None)]
    base = os.environ.get("HASHED_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    if not args.no_postgres:
        databases.append(("postgresql", base))
    rows_out: list[tuple[str, ...]] = []

    def report(*row: str) -> None:
        rows_out.append(row)
        print(*row, sep=" | ", flush=True)

    for database, pg_base in databases:
        with tempfile.TemporaryDirectory() as folder, _fresh_pg(pg_base) as database_url:
            tmp = Path(folder)
            for workers in args.workers:
                with backend(tmp, database_url, workers) as url:
                    load_before = os.getloadavg()[0]
                    rates, latencies = [], []
                    for _ in range(args.runs):
                        rate, lat = ingest(url, tmp, args.agents, args.records // args.agents)
                        rates.append(rate)
                        latencies += lat
                    report(
                        database,
                        f"ingest, batches of {BATCH}, {args.agents} agents, workers={workers}",
                        f"{statistics.median(rates):,.0f} rec/s (runs: {', '.join(f'{r:,.0f}' for r in rates)})",
                        f"{pct(latencies, 0.5) * 1000:.1f} ms",
                        f"{pct(latencies, 0.99) * 1000:.1f} ms",
                        f"{load_before:.2f} → {os.getloadavg()[0]:.2f}",
                    )
            if args.skip_query:
                continue
            with backend(tmp, database_url, args.workers[-1]) as url:
                started = time.perf_counter()
                admin, agent_ids = fill(url, database, database_url, tmp / "data", args.rows)
                print(f"  ({database}: {args.rows:,} rows bulk-inserted in {time.perf_counter() - started:.0f} s)")
                load_before = os.getloadavg()[0]
                for name, times in query(admin, agent_ids, args.queries).items():
                    report(
                        database,
                        f"GET /v1/logs, {name}, of {args.rows:,}, workers={args.workers[-1]}",
                        "",
                        f"{pct(times, 0.5) * 1000:.1f} ms",
                        f"{pct(times, 0.99) * 1000:.1f} ms",
                        f"{load_before:.2f} → {os.getloadavg()[0]:.2f}",
                    )
    print()
    print(f"| database | measurement ({os.cpu_count()} cores) | throughput | p50 | p99 | load (1 min) |")
    print("|---|---|---|---|---|---|")
    for row in rows_out:
        print("| " + " | ".join(row) + " |")


def ab(args: argparse.Namespace) -> None:
    """Same-run A/B of ingest throughput: this checkout against each `--baseline`, alternating, same records.

    With several baselines (e.g. the code before a change and a build without a feature), every run ships its
    records to every backend, in an order that rotates (and reverses every other round), and one row per baseline
    compares this checkout with it; "paired" is the median of the run-by-run ratios, which a machine whose load
    drifts during the measurement moves less than the ratio of the medians.
    """
    databases: list[tuple[str, str | None]] = [] if args.no_sqlite else [("sqlite", None)]
    if not args.no_postgres:
        databases.append(
            ("postgresql", os.environ.get("HASHED_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
        )
    print(
        "| database | workers | baseline | this checkout (rec/s, median) | baseline (rec/s, median) | ratio (paired) "
        "| backend CPU µs/record (this / baseline) | CPU ratio (paired) | runs (this / baseline) "
        "| CPU runs (this / baseline) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    variants: list[tuple[str, Path | None]] = [("this", None)]
    variants += [(f"{n}:{path.name}", path) for n, path in enumerate(args.baseline, 1)]
    for database, pg_base in databases:
        for workers in args.workers:
            with contextlib.ExitStack() as stack:
                folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
                urls = {}
                for n, (variant, src) in enumerate(variants):
                    database_url = stack.enter_context(_fresh_pg(pg_base))
                    urls[variant] = stack.enter_context(backend(folder / str(n), database_url, workers, src))
                rates: dict[str, list[float]] = {variant: [] for variant, _ in variants}
                cpu: dict[str, list[float]] = {variant: [] for variant, _ in variants}
                for run in range(args.runs):
                    prepared = prepare(folder / f"records-{run}", args.agents, args.records // args.agents)
                    turn = run % len(variants)
                    order = [variant for variant, _ in variants[turn:] + variants[:turn]]
                    for variant in order if run // len(variants) % 2 == 0 else reversed(order):
                        before = cpu_seconds(urls[variant])
                        rate, _ = ingest(urls[variant], folder, args.agents, args.records // args.agents, prepared)
                        rates[variant].append(rate)
                        cpu[variant].append((cpu_seconds(urls[variant]) - before) / args.records * 1e6)
                for variant, _ in variants[1:]:
                    _ab_row(database, workers, variant, rates, cpu)


def _ab_row(
    database: str, workers: int, baseline: str, rates: dict[str, list[float]], cpu: dict[str, list[float]]
) -> None:
    mine, base = statistics.median(rates["this"]), statistics.median(rates[baseline])
    mine_cpu, base_cpu = statistics.median(cpu["this"]), statistics.median(cpu[baseline])
    paired = statistics.median(a / b for a, b in zip(rates["this"], rates[baseline], strict=True))
    paired_cpu = statistics.median(a / b for a, b in zip(cpu["this"], cpu[baseline], strict=True))
    runs = " / ".join(", ".join(f"{r:,.0f}" for r in rates[v]) for v in ("this", baseline))
    cpu_runs = " / ".join(", ".join(f"{c:.0f}" for c in cpu[v]) for v in ("this", baseline))
    print(
        f"| {database} | {workers} | {baseline} | {mine:,.0f} | {base:,.0f} | {mine / base:.3f} ({paired:.3f}) "
        f"| {mine_cpu:.1f} / {base_cpu:.1f} | {mine_cpu / base_cpu:.3f} ({paired_cpu:.3f}) | {runs} | {cpu_runs} |",
        flush=True,
    )


@contextlib.contextmanager
def _fresh_pg(base: str | None):
    if base is None:
        yield None
        return
    import psycopg

    name = f"hashed_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield f"{base.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    main()
