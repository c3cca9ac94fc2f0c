"""What an experiment costs: a request's arm assignment against resolving the route alone
(interleaved in one process), and one adaptive refresh (per-arm statistics with feedback)
over a SQLite ledger of ``--rows`` usage records.

    .venv/bin/python -m bench.experiments [--rows 100000] [--reps 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import insert

from offramp.ledger.experiments import ArmFilter, arm_stats
from offramp.ledger.records import UsageRecord
from offramp.ledger.schema import feedback
from offramp.ledger.store import insert_usage, open_engine
from offramp.providers.base import Provider
from offramp.routing.config import RouteSpec
from offramp.routing.experiment import Experiments, Subject
from offramp.routing.pricing import load_price_table
from offramp.routing.route import LocalModel, RouteBuilder
from offramp.routing.router import Router
from offramp.settings import Settings

N = 20_000  # resolutions per timing


def _router() -> Router:
    async def never() -> Provider:
        raise AssertionError("the bench never calls a provider")

    builder = RouteBuilder(
        local=lambda name: LocalModel(never, "chat", "fake", name),
        upstream=lambda spec: None,  # type: ignore[arg-type,return-value]
        prices=load_price_table(),
        rng=random.Random(0),
    )
    arms = [{"name": "A", "model": "a", "weight": 80}, {"name": "B", "model": "b", "weight": 20}]
    specs = [
        {"name": "plain", "deployments": [{"model": "a"}, {"model": "b"}]},
        {
            "name": "ab",
            "deployments": [{"model": "a"}, {"model": "b"}],
            "experiment": {"arms": arms},
        },
    ]
    return Router([builder.build(RouteSpec.model_validate(s))[0] for s in specs])


def _assignment(reps: int) -> None:
    router = _router()
    experiments = Experiments(router)
    subjects = [Subject(f"r{i}", user=f"user-{i}") for i in range(N)]
    plain, split = [], []
    for _ in range(reps):
        started = time.perf_counter()
        for s in subjects:
            experiments.assign(router.resolve("plain", "chat"), s)
        plain.append((time.perf_counter() - started) / N * 1e6)
        started = time.perf_counter()
        for s in subjects:
            experiments.assign(router.resolve("ab", "chat"), s)
        split.append((time.perf_counter() - started) / N * 1e6)
    p, e = statistics.median(plain), statistics.median(split)
    print(f"route without experiment: {p:.2f} us/request; with: {e:.2f} us (+{e - p:.2f} us)")


def _record(rng: random.Random) -> UsageRecord:
    return UsageRecord(
        uuid.uuid4().hex,
        time.time(),
        "chat",
        "ab",
        "ab",
        "a",
        200,
        latency_ms=rng.uniform(5, 500),
        experiment="ab",
        arm=rng.choice("AB"),
    )


def _refresh(rows: int, reps: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        engine = open_engine(Settings(ledger_path=Path(folder) / "ledger.db"))
        rng = random.Random(1)
        for start in range(0, rows, 10_000):
            batch = [_record(rng) for _ in range(min(10_000, rows - start))]
            insert_usage(engine, batch)
            rated = [
                {"id": uuid.uuid4().hex, "ts": 0.0, "request_id": r.request_id, "metric": "thumbs",
                 "value": float(rng.random() < 0.5), "source": "api"}
                for r in batch[::4]
            ]  # fmt: skip
            with engine.begin() as conn:
                conn.execute(insert(feedback), rated)
        times = []
        for _ in range(reps):
            started = time.perf_counter()
            stats = arm_stats(engine, ArmFilter("ab", "ab", ["A", "B"]))
            times.append(time.perf_counter() - started)
        assert sum(s.requests for s in stats) == rows
        print(
            f"per-arm statistics over {rows} records, {rows // 4} ratings (SQLite): "
            f"median {statistics.median(times) * 1000:.0f} ms (min {min(times) * 1000:.0f})"
        )
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    _assignment(args.reps)
    _refresh(args.rows, args.reps)


if __name__ == "__main__":
    main()
