"""Hooks of the learning-content tasks: quiz answer keys and generic list rules."""

from __future__ import annotations

from typing import Any

from offramp.tasks.hooks import RunInfo, TaskHooks


def _norm(text: Any) -> str:
    return " ".join(str(text).lower().split()).strip(" .")


def quiz_answer_keys(output: Any, run: RunInfo) -> Any:
    """Each multiple-choice question's ``answer`` is the option its ``answer_index`` picks,
    so the key is one of the options by construction (the validator still checks)."""
    questions = []
    for q in output["questions"]:
        q = dict(q)
        if q.get("type") == "multiple_choice":
            options = q.get("options") or []
            index = q.get("answer_index")
            if isinstance(index, int) and 0 <= index < len(options):
                q["answer"] = options[index]
        questions.append(q)
    return {**output, "questions": questions}


def check_quiz(result: Any, values: dict[str, Any], args: dict[str, Any]) -> list[str]:
    """Multiple-choice answers are among distinct options; short answers are given; each
    question is of a requested type and no question repeats."""
    problems: list[str] = []
    wanted = values.get("question_types") or ["multiple_choice", "short_answer"]
    seen: set[str] = set()
    for i, q in enumerate(result.get("questions", [])):
        where = f"questions[{i}]"
        if q.get("type") not in wanted:
            problems.append(f"{where} is of type {q.get('type')!r}; use only {wanted}")
        if _norm(q.get("question", "")) in seen:
            problems.append(f"{where} repeats an earlier question")
        seen.add(_norm(q.get("question", "")))
        answer = q.get("answer")
        if q.get("type") == "multiple_choice":
            options = [_norm(o) for o in q.get("options") or []]
            if len(set(options)) != len(options):
                problems.append(f"{where} has duplicate options; every option must differ")
            if answer is None or _norm(answer) not in options:
                problems.append(f"{where}: the answer {answer!r} is not one of its options")
        elif not str(answer or "").strip():
            problems.append(f"{where} has no answer")
    return problems


def check_distinct(result: Any, values: dict[str, Any], args: dict[str, Any]) -> list[str]:
    """No two items of list ``args.items`` share the value of ``args.field`` (without a
    ``field``: no two items are the same text)."""
    items, field = args["items"], args.get("field")
    seen: dict[str, int] = {}
    problems = []
    suffix = f".{field}" if field else ""
    for i, item in enumerate(result.get(items, [])):
        key = _norm(item.get(field, "") if field else item)
        if key in seen:
            problems.append(f"{items}[{i}]{suffix} repeats {items}[{seen[key]}]{suffix}")
        seen.setdefault(key, i)
    return problems


def check_fields_differ(result: Any, values: dict[str, Any], args: dict[str, Any]) -> list[str]:
    """Within each item of ``args.items``, the ``args.fields`` all hold different text."""
    items, fields = args["items"], args["fields"]
    problems = []
    for i, item in enumerate(result.get(items, [])):
        texts = [_norm(item.get(f, "")) for f in fields]
        if len(set(texts)) != len(texts):
            problems.append(f"{items}[{i}]: {' and '.join(fields)} must say different things")
    return problems


def register(hooks: TaskHooks) -> None:
    hooks.finish.register("quiz-answer-keys", quiz_answer_keys)
    hooks.validators.register("quiz-answers-in-options", check_quiz)
    hooks.validators.register("distinct", check_distinct)
    hooks.validators.register("fields-differ", check_fields_differ)
