"""The Prometheus alert rules and the Grafana dashboard, checked offline: the rules load in
``promtool check rules`` and their unit tests (``promtool test rules``) fire every alert on
synthetic series; every PromQL expression of the dashboard parses (promtool again) and
names only metrics offramp's /metrics really exports; and the console evaluates the same
rules with the same thresholds."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from yamllint import linter
from yamllint.config import YamlLintConfig

from offramp.console import alerts
from offramp.observability.metrics import Gauges, Metrics

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "offramp.json"
METRIC = re.compile(r"\b(offramp_[a-z0-9_]+|up)\b")
# Grafana's own variables, given values promtool can parse
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__range": "6h", "$__interval": "1m"}


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: `make promtool` installs Debian's prometheus"
    return subprocess.run(
        [promtool, *args], capture_output=True, text=True, timeout=120, check=False
    )


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


def _dashboard() -> dict[str, Any]:
    found: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return found


def _exported() -> set[str]:
    """Every sample name a real Metrics renders once each of its series has a value."""
    metrics = Metrics(
        Gauges(
            queue_depth=lambda: {"m": 1},
            ledger_queue=lambda: 1,
            ledger_dropped=lambda: 1,
            redis_failures=lambda: 1,
            breakers=lambda: [("r", "d", "open")],
        )
    )
    metrics.requests.labels("chat", "m", "200").inc()
    metrics.latency.labels("chat", "m").observe(0.1)
    metrics.ttft.labels("m").observe(0.1)
    metrics.tokens.labels("m", "prompt").inc()
    metrics.cost.labels("m").inc()
    metrics.openai_cost.labels("m").inc()
    metrics.cache_lookups.labels("response").inc()
    metrics.cache_hits.labels("response").inc()
    text = metrics.render().decode()
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


def _expressions() -> list[str]:
    out = []
    for panel in _dashboard()["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(name, value)
            out.append(expr)
    return out


def test_alert_rules_load_in_promtool() -> None:
    checked = _promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 6 rules found" in checked.stdout


def test_alert_rule_unit_tests_fire_every_alert() -> None:
    tested = _promtool("test", "rules", str(RULE_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    cases = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))["tests"]
    fired = {
        check["alertname"]
        for case in cases
        for check in case["alert_rule_test"]
        if check["exp_alerts"]
    }
    quiet = {
        check["alertname"]
        for case in cases
        for check in case["alert_rule_test"]
        if not check["exp_alerts"]
    }
    names = {rule["alert"] for rule in _rules()}
    assert fired == names and quiet == names  # each fires, and each stays quiet when it should


def test_rule_unit_tests_fail_when_a_threshold_moves(tmp_path: Path) -> None:
    moved = RULES.read_text(encoding="utf-8").replace("> 0.05", "> 0.5")
    (tmp_path / "alerts.yml").write_text(moved, encoding="utf-8")
    shutil.copy(RULE_TESTS, tmp_path / "alerts_test.yml")
    tested = _promtool("test", "rules", str(tmp_path / "alerts_test.yml"))
    assert tested.returncode != 0 and "OfframpHighErrorRate" in tested.stdout + tested.stderr


def test_rules_and_tests_pass_yamllint() -> None:
    config = YamlLintConfig(file=str(ROOT / ".yamllint.yaml"))
    problems = [
        f"{path.name}:{p.line}: {p.message}"
        for path in (RULES, RULE_TESTS)
        for p in linter.run(path.read_text(encoding="utf-8"), config, str(path))
    ]
    assert problems == []


def test_the_console_evaluates_the_same_rules_and_thresholds() -> None:
    rules = {rule["alert"]: rule["expr"] for rule in _rules()}
    assert [r.name for r in alerts.RULES] == list(rules)
    latency = rules["OfframpHighLatency"]
    assert "histogram_quantile(0.95," in latency and f"> {alerts.LATENCY_P95_S:g}" in latency
    assert f"> {alerts.ERROR_RATE:g}" in rules["OfframpHighErrorRate"]
    assert f"< {alerts.CACHE_HIT_RATE:g}" in rules["OfframpLowCacheHitRate"]
    assert "[15m]" in rules["OfframpLowCacheHitRate"] and alerts.CACHE_WINDOW_S == 900
    assert "[5m]" in rules["OfframpHighErrorRate"] and alerts.RATE_WINDOW_S == 300
    cost = rules["OfframpCostSpike"]
    assert f"{alerts.COST_SPIKE:g} * " in cost and "[1d] offset 1h" in cost and "/ 24" in cost
    assert alerts.BASELINE_S == 86400 and alerts.COST_WINDOW_S == 3600


def test_alert_rules_name_only_exported_metrics() -> None:
    exported = _exported() | {"up"}
    named = {m for rule in _rules() for m in METRIC.findall(rule["expr"])}
    assert named and named <= exported, named - exported


def test_dashboard_is_well_formed() -> None:
    dash = _dashboard()
    assert dash["uid"] and dash["title"] == "offramp" and isinstance(dash["schemaVersion"], int)
    assert [v["name"] for v in dash["templating"]["list"]] == ["datasource"]
    panels = dash["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        mine = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not mine & cells, f"{panel['title']} overlaps another panel"
        cells |= mine
        if panel["type"] == "row":
            continue
        assert panel["type"] in {"stat", "timeseries"}
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(set(refs)) == len(refs), panel["title"]


def test_every_dashboard_query_parses_and_names_exported_metrics(tmp_path: Path) -> None:
    expressions = _expressions()
    assert len(expressions) >= 20
    exported = _exported() | {"up"}
    for expr in expressions:
        named = set(METRIC.findall(expr))
        assert named and named <= exported, (expr, named - exported)
    # promtool parses PromQL only inside rule files: each query becomes a recording rule
    as_rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:q{i}", "expr": e} for i, e in enumerate(expressions)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(as_rules), encoding="utf-8")
    checked = _promtool("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("metric", ["offramp_cost_usd_total", "offramp_breaker_state"])
def test_the_dashboard_covers_what_the_alerts_watch(metric: str) -> None:
    assert any(metric in e for e in _expressions())
