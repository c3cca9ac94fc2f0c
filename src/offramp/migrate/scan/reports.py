"""A scan as a table (people), JSON (scripts) or SARIF 2.1.0 (GitHub code scanning)."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from offramp.migrate.scan.sites import ScanResult, Site

_RULES: dict[str, str] = {
    "import": "Imports an LLM vendor SDK",
    "client": "Builds an SDK client that points at the vendor's API",
    "wrapper": "Builds a framework model (LangChain, LlamaIndex, AI SDK) on the vendor's API",
    "chat": "Calls chat completions",
    "completion": "Calls legacy text completions",
    "embedding": "Calls embeddings",
    "responses": "Calls the Responses API",
    "messages": "Calls Anthropic's Messages API",
    "api-call": "Calls a vendor API that offramp does not serve",
    "legacy-call": "Calls the pre-1.0 OpenAI SDK module API (or the v3 Node SDK)",
    "endpoint": "Sets the endpoint an SDK client sends to",
    "api-key": "Sets the SDK's module-level API key",
    "raw-http": "Sends HTTP straight to the vendor's API host",
    "api-key-env": "Reads a vendor API key or endpoint variable",
}


def as_json(result: ScanResult) -> str:
    return json.dumps(
        {
            "root": result.root,
            "files_scanned": result.files_scanned,
            "sites": [_site_dict(s) for s in result.sites],
            "needs_change": len(result.blocking),
            "unparsed": [{"file": f, "reason": r} for f, r in result.unparsed],
        },
        indent=2,
    )


def as_sarif(result: ScanResult) -> str:
    rules = [
        {"id": rule, "name": rule, "shortDescription": {"text": text}}
        for rule, text in _RULES.items()
    ]
    results = [
        {
            "ruleId": s.kind,
            "level": "warning" if s.needs_change else "note",
            "message": {"text": f"{_RULES[s.kind]} ({s.sdk}). Change: {s.change}"},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": s.file, "uriBaseId": "%SRCROOT%"},
                        "region": {"startLine": s.line, "startColumn": s.column},
                    }
                }
            ],
            "properties": {
                "sdk": s.sdk,
                "models": list(s.models),
                "streams": s.streams,
                "needsChange": s.needs_change,
            },
        }
        for s in result.sites
    ]
    sarif: dict[str, Any] = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "offramp-scan",
                        "informationUri": "https://github.com/offramp/offramp",
                        "rules": rules,
                    }
                },
                "results": results,
                "invocations": [
                    {
                        "executionSuccessful": True,
                        "toolExecutionNotifications": [
                            {"level": "warning", "message": {"text": f"{f}: {r}"}}
                            for f, r in result.unparsed
                        ],
                    }
                ],
            }
        ],
    }
    return json.dumps(sarif, indent=2)


def print_table(result: ScanResult, console: Console) -> None:
    table = Table("file:line", "kind", "sdk", "models", "stream", "change")
    for s in result.sites:
        table.add_row(
            f"{s.file}:{s.line}" + (" *" if s.needs_change else ""),
            s.kind,
            s.sdk,
            ", ".join(s.models),
            "yes" if s.streams else "",
            s.change,
        )
    console.print(table)
    console.print(
        f"{len(result.sites)} sites in {result.files_scanned} files scanned; "
        f"{len(result.blocking)} need a code change (*), the rest only configuration"
    )
    for file, reason in result.unparsed:
        console.print(f"[yellow]not fully parsed[/yellow] {file}: {reason}")


def _site_dict(s: Site) -> dict[str, Any]:
    return {
        "file": s.file,
        "line": s.line,
        "column": s.column,
        "kind": s.kind,
        "sdk": s.sdk,
        "models": list(s.models),
        "streams": s.streams,
        "needs_change": s.needs_change,
        "env": s.env,
        "change": s.change,
    }
