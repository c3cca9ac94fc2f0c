"""The code-analysis task's hooks: static analysis before the model, the report after.

The static part needs no model and is exact; the model adds insights (its confidence is
the geometric-mean probability of the tokens it chose, not a number it made up).
"""

from __future__ import annotations

import asyncio
from typing import Any

from offramp.structured.repair import confidence
from offramp.tasks.hooks import RunInfo, TaskHooks

MAX_PROMPT_FINDINGS = 8


def analyze(code: str, language: str) -> dict[str, Any]:
    """The static analysis of ``code`` in ``language`` (python, javascript, typescript)."""
    if language == "python":
        from offramp.tasks.builtin.code_analysis.python import analyze_python

        return analyze_python(code)
    from offramp.tasks.builtin.code_analysis.javascript import analyze_js

    return analyze_js(code, language)


async def prepare(values: dict[str, Any]) -> dict[str, Any]:
    """Run the static analysis off the event loop; the template sees ``analysis`` and a
    short ``findings`` list for the prompt."""
    report = await asyncio.to_thread(analyze, values["code"], values["language"])
    findings = [
        f"line {e['line']}: syntax error: {e['message']}" for e in report["syntax_errors"]
    ] + [f"line {f['line']}: {f['code']} {f['message']}" for f in report["best_practices"]]
    return {"analysis": report, "findings": findings[:MAX_PROMPT_FINDINGS]}


def report(output: Any, run: RunInfo) -> Any:
    """Seed 000's analysis shape: the static findings plus the model's insights."""
    static = run.context["analysis"]
    return {
        "language": run.input["language"],
        "syntax_errors": static["syntax_errors"],
        "code_quality": static["code_quality"],
        "performance": static["performance"],
        "best_practices": static["best_practices"],
        "suggestions": output["suggestions"],
        "ai_insights": {
            "ai_analysis": output["analysis"],
            "confidence": confidence(run.mean_logprob),
            "model_used": run.model,
        },
        "linter": static["linter"],
    }


def register(hooks: TaskHooks) -> None:
    hooks.prepare.register("static-code-analysis", prepare)
    hooks.finish.register("code-analysis-report", report)
