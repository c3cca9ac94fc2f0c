"""``offramp scan`` on a fixture project holding every call style and decoys.

Each real site in the fixture carries an ``expect: KIND[, KIND]`` comment on its line; the
scan must report exactly those (file, line, kind) triples: nothing missed, no decoy.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from offramp.migrate.scan import reports
from offramp.migrate.scan.scanner import scan

PROJECT = Path(__file__).parent.parent / "fixtures" / "scan_project"
_EXPECT = re.compile(r"(?:#|//)\s*expect:\s*([a-z\-, ]+)")


def _expected() -> set[tuple[str, int, str]]:
    out = set()
    for path in PROJECT.rglob("*"):
        if not path.is_file() or ".venv" in path.parts or "node_modules" in path.parts:
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            match = _EXPECT.search(line)
            if match:
                rel = path.relative_to(PROJECT).as_posix()
                out |= {(rel, number, k.strip()) for k in match.group(1).split(",")}
    return out


def test_every_site_found_and_no_decoy_reported() -> None:
    result = scan(PROJECT)
    found = {(s.file, s.line, s.kind) for s in result.sites}
    expected = _expected()
    assert len(expected) > 40
    assert found - expected == set(), "reported sites that are not real (decoys?)"
    assert expected - found == set(), "missed real sites"


def test_vendored_folders_are_skipped_and_broken_files_reported() -> None:
    result = scan(PROJECT)
    files = {s.file for s in result.sites}
    assert not any(".venv" in f or "node_modules" in f for f in files)
    assert not any("decoys" in f for f in files)
    unparsed = dict(result.unparsed)
    assert set(unparsed) == {"tutor/broken.py", "web/src/broken.js"}


def test_sites_carry_models_streaming_and_the_change() -> None:
    sites = {(s.file, s.line, s.kind): s for s in scan(PROJECT).sites}
    streamed = sites[("tutor/client.py", 18, "chat")]
    assert streamed.models == ("gpt-4o",) and streamed.streams
    assert not sites[("tutor/client.py", 10, "chat")].streams
    assert sites[("web/src/ai.ts", 11, "chat")].streams
    assert sites[("tutor/azure.py", 5, "client")].sdk == "azure-openai"
    assert sites[("tutor/azure.py", 5, "client")].needs_change
    assert sites[("tutor/claude.py", 4, "messages")].sdk == "anthropic"
    plain = sites[("tutor/client.py", 5, "client")]
    assert not plain.needs_change and "set OPENAI_BASE_URL" in plain.change
    hard_coded = sites[("tutor/client.py", 6, "endpoint")]
    assert hard_coded.needs_change and hard_coded.detail == "https://example.invalid/v1"
    assert "OPENAI_BASE_URL" in sites[("web/src/ai.ts", 3, "client")].change
    assert sites[("tutor/chains.py", 4, "wrapper")].streams  # ChatOpenAI(streaming=True)


def test_json_and_sarif_describe_the_same_sites() -> None:
    result = scan(PROJECT)
    as_json = json.loads(reports.as_json(result))
    assert len(as_json["sites"]) == len(result.sites)
    sarif = json.loads(reports.as_sarif(result))
    assert sarif["version"] == "2.1.0"
    run = sarif["runs"][0]
    rules = {r["id"] for r in run["tool"]["driver"]["rules"]}
    assert len(run["results"]) == len(result.sites)
    for res in run["results"]:
        assert res["ruleId"] in rules
        region = res["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] >= 1 and region["startColumn"] >= 1


def test_clean_tree_has_no_sites(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("import httpx\nhttpx.get('http://127.0.0.1:8000/v1/models')\n")
    assert scan(tmp_path).sites == []
