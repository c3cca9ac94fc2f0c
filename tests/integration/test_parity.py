"""``offramp parity`` between two real local routes, with both reports, the HTML one
rendered by headless Chromium."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from offramp.local.pool import ModelPool
from tests.servers import ServerThread

pytestmark = pytest.mark.slow
PROMPTS = Path(__file__).parent.parent / "fixtures" / "parity" / "prompts.jsonl"


def _parity(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "offramp", "parity", str(PROMPTS), *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={
            "HF_HUB_OFFLINE": "1",
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        },
    )


def test_two_local_routes_make_both_reports(
    per_slot_server: tuple[ServerThread, ModelPool], tmp_path: Path
) -> None:
    server, _ = per_slot_server  # per-slot KV: a replay at another time answers the same
    route = server.base_url + "/v1#gpt-4o-mini"
    record = tmp_path / "baseline.jsonl"
    done = _parity(
        "--baseline",
        route + "?temperature=0&priced_as=openai",  # as if it were OpenAI's gpt-4o-mini
        "--candidate",
        route + "?temperature=0&system=Answer in a very different style.",
        "--record-baseline",
        str(record),
        "--report-dir",
        str(tmp_path / "r"),
        "--min-pass-rate",
        "0",
    )
    assert done.returncode == 0, done.stderr
    markdown = (tmp_path / "r" / "parity.md").read_text()
    assert markdown.startswith("# Parity: PASS")
    assert "Error" not in markdown  # every prompt got an answer from both routes
    assert "- tokens: baseline " in markdown and "- tokens: baseline 0," not in markdown
    assert "- cost: baseline $" in markdown and "list prices of openai gpt-4o-mini" in markdown
    assert (
        "- cost: candidate not priced" in markdown and "- saving per 1,000 prompts: $" in markdown
    )
    embed_row = next(line for line in markdown.splitlines() if "| embed-sentence |" in line)
    assert "| 1.000 |" in embed_row  # same embedding model on both routes
    for case in ("capital", "recursion", "greeting", "person", "embed-sentence"):
        assert f"| {case} |" in markdown
    html = (tmp_path / "r" / "parity.html").read_text()
    assert html.count("<svg") == 2 and 'class="bar"' in html
    assert len(record.read_text().splitlines()) == 5

    # replaying the recording against the same route as the baseline: identical answers
    same = _parity(
        "--baseline-file",
        str(record),
        "--candidate",
        route + "?temperature=0",
        "--report-dir",
        str(tmp_path / "replay"),
        "--min-similarity",
        "0.999",
        "--min-embedding-similarity",
        "0.999",
    )
    assert same.returncode == 0, same.stdout + same.stderr
    replayed = (tmp_path / "replay" / "parity.md").read_text()
    assert "- cost: baseline $" in replayed  # the recording keeps what prices it
    # and a strict bar the styled candidate cannot meet fails the run
    strict = _parity(
        "--baseline-file",
        str(record),
        "--candidate",
        route + "?temperature=1.5&system=Reply only in French.",
        "--report-dir",
        str(tmp_path / "strict"),
        "--min-similarity",
        "0.999",
    )
    assert strict.returncode == 1
    assert "FAIL" in (tmp_path / "strict" / "parity.md").read_text().splitlines()[0]


def test_html_report_renders_its_plots_in_chromium(server: ServerThread, tmp_path: Path) -> None:
    from PIL import Image

    route = server.base_url + "/v1#gpt-4o-mini"
    done = _parity(
        "--baseline",
        route + "?temperature=0",
        "--candidate",
        route + "?temperature=0.8",
        "--report-dir",
        str(tmp_path),
        "--min-pass-rate",
        "0",
    )
    assert done.returncode == 0, done.stderr
    shot = tmp_path / "page.png"
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--hide-scrollbars",
            "--window-size=1200,900",
            f"--screenshot={shot}",
            (tmp_path / "parity.html").as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    image = Image.open(shot).convert("RGB")
    # the bars are drawn in the report's blue and orange; count those pixels
    colours = {(0x3B, 0x6E, 0xA8), (0xD9, 0x82, 0x2B)}
    pixels = np.asarray(image).reshape(-1, 3)
    painted = sum(int(np.all(pixels == colour, axis=1).sum()) for colour in colours)
    assert painted > 500, "the charts did not render"
