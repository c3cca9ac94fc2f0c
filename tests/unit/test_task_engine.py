"""The task engine and the structured-output loop, with the model's side scripted so the
repair, fallback and failure paths run exactly (the real model runs in tests/api)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from offramp.errors import InvalidRequest, OutputValidationFailed, SessionNotFound, TaskNotFound
from offramp.gateway.backend import _repair_choices
from offramp.structured import repair as structured
from offramp.structured.repair import Job, RepairsExhausted
from offramp.tasks.builtin import builtin_hooks
from offramp.tasks.catalog import TaskCatalog
from offramp.tasks.engine import TaskCall, TaskEngine, TaskOutcome
from offramp.tasks.history import MemorySessions
from offramp.types import ChatRequest, Message, OutputFormat, Sampling
from tests.unit.scripted import ScriptedBackend

HOOKS = builtin_hooks()
CATALOG = TaskCatalog.load(HOOKS)


def engine(catalog: TaskCatalog = CATALOG) -> TaskEngine:
    return TaskEngine(catalog, HOOKS, MemorySessions(8, 3600))


def run(backend: ScriptedBackend, name: str, data: dict[str, Any], **kw: Any) -> TaskOutcome:
    return asyncio.run(engine().run(name, TaskCall(data, **kw), backend))


def mc(question: str, options: list[str], index: int = 0) -> dict[str, Any]:
    return {
        "type": "multiple_choice",
        "question": question,
        "options": options,
        "answer_index": index,
        "explanation": "Because it is.",
    }


def test_quiz_repair_feeds_problems_back_and_reports_them() -> None:
    bad = {"questions": [mc("Which one is a list?", ["[]", "[]", "{}", "()"])]}
    good = {"questions": [mc("Which one is a list?", ["[]", "{}", "()", "set()"])]}
    backend = ScriptedBackend([json.dumps(bad), json.dumps(good)])
    out = run(
        backend, "quiz", {"topic": "lists", "count": 1, "question_types": ["multiple_choice"]}
    )
    assert out.result["questions"][0]["answer"] == "[]"
    assert out.metadata["attempts"] == 2 and out.metadata["fallback"] is None
    [repair] = out.metadata["repairs"]
    assert repair["attempt"] == 1
    assert "$.questions[0].options" in repair["problems"][0]
    assert "non-unique" in repair["problems"][0]
    second = backend.requests[1]
    assert second.messages[-2] == Message("assistant", json.dumps(bad))
    assert "non-unique" in (second.messages[-1].content or "")
    assert second.sampling.temperature > 0  # a repair samples instead of repeating itself
    assert backend.requests[0].output.kind == "json_schema"  # grammar-constrained first try


def test_schema_is_resolved_from_the_input() -> None:
    reply = {"questions": [mc(f"Question number {i}?", ["a", "b", "c", "d"]) for i in range(2)]}
    backend = ScriptedBackend([json.dumps(reply)])
    run(backend, "quiz", {"topic": "x", "count": 2})
    schema = backend.requests[0].output.schema
    assert schema is not None
    assert schema["properties"]["questions"]["minItems"] == 2
    assert schema["properties"]["questions"]["maxItems"] == 2


def meal_reply(dishes: list[str], ingredient: str = "rice", servings: int = 2) -> str:
    days = []
    for i in range(0, len(dishes), 3):
        names = dishes[i : i + 3]
        days.append(
            {
                meal: {"dish": name, "ingredients": [ingredient, "salt"]}
                for meal, name in zip(("breakfast", "lunch", "dinner"), names, strict=True)
            }
        )
    return json.dumps({"days": days, "servings": servings})


MEAL_INPUT = {
    "user_preferences": {
        "dietary_restrictions": ["vegetarian"],
        "disliked_ingredients": ["mushrooms"],
    },
    "constraints": {"duration_days": 1, "servings_per_meal": 2},
}


def test_meal_plan_rejects_disliked_and_forbidden_then_falls_back_and_says_so() -> None:
    replies = [
        meal_reply(["Mushroom toast", "Rice bowl", "Bean stew"]),
        meal_reply(["Oat porridge", "Chicken salad", "Bean stew"]),
        meal_reply(["Oat porridge", "Bean stew", "Bean stew"]),
    ]
    out = run(ScriptedBackend(replies), "meal-plan", MEAL_INPUT)
    meta = out.metadata
    assert meta["fallback"] == "meal-plan-catalogue" and meta["attempts"] == 3
    problems = [p for r in meta["repairs"] for p in r["problems"]]
    assert any("disliked ingredient 'mushrooms'" in p for p in problems)
    assert any("vegetarian" in p and "Chicken" in p for p in problems)
    assert any("repeats 'Bean stew'" in p for p in problems)
    day = out.result["meal_plan"]["days"][0]["meals"]
    text = json.dumps(day).lower()
    assert "mushroom" not in text and "chicken" not in text
    assert out.result["grocery_list"]["items"]


def test_meal_plan_accepts_a_plan_that_keeps_the_rules() -> None:
    out = run(
        ScriptedBackend([meal_reply(["Oat porridge", "Rice bowl", "Bean stew"])]),
        "meal-plan",
        MEAL_INPUT,
    )
    assert out.metadata["attempts"] == 1 and out.metadata["fallback"] is None
    assert out.result["meal_plan"]["servings_per_meal"] == 2
    assert {"ingredient": "rice", "used_in": 3} in out.result["grocery_list"]["items"]


def test_scaffold_falls_back_to_templates_when_the_code_does_not_parse() -> None:
    broken = {"files": [{"path": "main.py", "content": "def app(:\n    return"}], "notes": ""}
    backend = ScriptedBackend([json.dumps(broken)] * 2)
    out = run(backend, "scaffold", {"description": "A todo API.", "framework": "fastapi"})
    assert out.result["source"] == "template" and out.metadata["fallback"] == "scaffold-templates"
    assert "main.py does not parse: line 1" in out.metadata["repairs"][0]["problems"][0]
    assert any(f["path"] == "main.py" for f in out.result["files"])


def test_no_fallback_means_a_clear_error_never_an_invalid_answer() -> None:
    dup = {"cards": [{"front": "Same", "back": "A"}, {"front": "same", "back": "B"}]}
    backend = ScriptedBackend([json.dumps(dup)] * 2)
    with pytest.raises(OutputValidationFailed, match="no valid result after 2 attempt"):
        run(backend, "flashcards", {"topic": "x", "count": 2}, max_attempts=2)


def test_truncated_reply_is_repaired_with_a_larger_budget() -> None:
    good = {"cards": [{"front": "Term", "back": "Meaning"}]}
    backend = ScriptedBackend(['{"cards": [{"fr', json.dumps(good)], finish=["length", "stop"])
    out = run(backend, "flashcards", {"topic": "x", "count": 1})
    assert "cut off" in out.metadata["repairs"][0]["problems"][0]
    first, second = backend.requests
    assert first.sampling.max_tokens and second.sampling.max_tokens == first.sampling.max_tokens * 2


def test_without_grammar_the_schema_is_described_and_the_reply_parsed_leniently() -> None:
    good = {"cards": [{"front": "Term", "back": "Meaning"}]}
    reply = f"Here you go:\n```json\n{json.dumps(good)}\n```"
    backend = ScriptedBackend([reply], grammar=False)
    out = run(backend, "flashcards", {"topic": "x", "count": 1})
    assert out.result == good
    instruction = backend.requests[0].messages[-1]
    assert instruction.role == "system" and '"cards"' in (instruction.content or "")


def test_streamed_task_yields_deltas_then_the_validated_result() -> None:
    good = {"cards": [{"front": "Term", "back": "Meaning"}]}
    backend = ScriptedBackend([json.dumps(good)])

    async def collect() -> list[Any]:
        events = engine().events(
            "flashcards", TaskCall({"topic": "x", "count": 1}), backend, stream=True
        )
        return [e async for e in events]

    events = asyncio.run(collect())
    *deltas, last = events
    assert isinstance(last, TaskOutcome) and last.result == good
    assert "".join(d.text for d in deltas) == json.dumps(good)


def test_tutor_replays_the_session_history() -> None:
    reply = {
        "message": "Binary search halves the range.",
        "suggestions": ["Try it"],
        "resources": [],
    }
    backend = ScriptedBackend([json.dumps(reply)] * 2)
    first = run(backend, "tutor", {"message": "What is binary search?"})
    session = first.metadata["session_id"]
    assert first.result["model_used"] == "scripted-model"
    asyncio.run(
        engine().run(
            "tutor", TaskCall({"message": "And its cost?", "session_id": session}), backend
        )
    )  # a fresh engine has a fresh history: nothing replayed
    assert len(backend.requests[1].messages) == 2
    scripted = ScriptedBackend([json.dumps(reply)] * 2)
    shared = engine()
    for text in ("What is binary search?", "And its cost?"):
        asyncio.run(
            shared.run("tutor", TaskCall({"message": text, "session_id": "s1"}), scripted, "k/")
        )
    messages = scripted.requests[1].messages
    assert [m.role for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1].content == "What is binary search?"
    assert messages[2].content == reply["message"]
    other = ScriptedBackend([json.dumps(reply)])
    with pytest.raises(SessionNotFound):  # another key's session is not found
        asyncio.run(
            shared.run("tutor", TaskCall({"message": "x", "session_id": "s1"}), other, "k2/")
        )
    assert other.requests == []


@pytest.mark.parametrize(
    ("data", "param", "code"),
    [
        ({}, "input.topic", "missing_required_parameter"),
        (
            {"topic": "x", "persona": {"difficulty": "expert"}},
            "input.persona.difficulty",
            "invalid_value",
        ),
        ({"topic": "x", "count": 0}, "input.count", "invalid_value"),
        ({"topic": "x", "colour": "red"}, "input.colour", "unknown_parameter"),
        ({"topic": "x", "question_types": ["essay"]}, "input.question_types[0]", "invalid_value"),
    ],
)
def test_bad_input_names_the_field(data: dict[str, Any], param: str, code: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        run(ScriptedBackend([]), "quiz", data)
    assert caught.value.param == param and caught.value.code == code


def test_unknown_task_is_not_found() -> None:
    with pytest.raises(TaskNotFound, match="does not exist"):
        run(ScriptedBackend([]), "no-such-task", {})


USER_TASK = """
name: haiku
version: "2"
description: A haiku about a subject.
route: {max_tokens: 80, max_attempts: 2}
input_schema:
  type: object
  required: [subject]
  properties: {subject: {type: string, minLength: 1}}
output_schema:
  type: object
  additionalProperties: false
  required: [lines]
  properties:
    lines: {type: array, items: {type: string, minLength: 1, maxLength: 40}, minItems: 3, maxItems: 3}
prompt:
  system: "{% include 'style.j2' %}"
  user: "Write a haiku about {{ input.subject }}."
examples: [{subject: rain}]
"""


def test_user_tasks_load_from_a_folder_with_their_partials(tmp_path: Path) -> None:
    (tmp_path / "haiku.yaml").write_text(USER_TASK)
    (tmp_path / "style.j2").write_text("You are a poet.")
    (tmp_path / "notes.txt").write_text("not a task")
    catalog = TaskCatalog.load(HOOKS, tmp_path)
    assert (
        "haiku" in [t.spec.name for t in catalog.all()]
        and len(catalog.all()) == len(CATALOG.all()) + 1
    )
    backend = ScriptedBackend([json.dumps({"lines": ["a", "b", "c"]})])
    out = asyncio.run(engine(catalog).run("haiku", TaskCall({"subject": "rain"}), backend))
    assert out.version == "2" and out.result == {"lines": ["a", "b", "c"]}
    assert backend.requests[0].messages[0] == Message("system", "You are a poet.")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("name: x\n", "description"),
        ("- not a mapping\n", "must hold a mapping"),
        (USER_TASK + "validators: [no-such-validator]\n", "no validator hook named 'no-such"),
        (USER_TASK.replace("{{ input.subject }}", "{{ input.subject "), "does not compile"),
        (USER_TASK.replace("minItems: 3", "minItems: three"), "not a valid JSON schema"),
        (USER_TASK.replace("[{subject: rain}]", "[{subject: 3}]"), "examples"),
    ],
)
def test_broken_user_task_files_fail_naming_the_file(tmp_path: Path, text: str, match: str) -> None:
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(InvalidRequest, match=match) as caught:
        TaskCatalog.load(HOOKS, tmp_path)
    assert "bad.yaml" in caught.value.message and caught.value.param == "tasks_dir"


def test_structured_loop_raises_when_every_attempt_fails() -> None:
    request = ChatRequest("m", (Message("user", "hi"),), Sampling(temperature=0, max_tokens=20))
    job = Job(request, {"type": "object", "required": ["a"]}, max_attempts=2)
    backend = ScriptedBackend(['{"b": 1}', "not json"])
    with pytest.raises(RepairsExhausted) as caught:
        asyncio.run(structured.run(backend, job))
    first, second = caught.value.rejected
    assert "'a' is a required property" in first.problems[0]
    assert "not valid JSON" in second.problems[0]
    assert caught.value.usage.completion_tokens == len('{"b": 1}') + len("not json")


def test_response_format_choices_are_repaired_one_by_one() -> None:
    schema = {"type": "object", "required": ["a"], "properties": {"a": {"type": "integer"}}}
    request = ChatRequest(
        "m", (Message("user", "hi"),), n=2, output=OutputFormat("json_schema", schema, "s")
    )
    backend = ScriptedBackend(['{"b": 1}', '{"a": 2}', '{"a": 2}'])
    done = asyncio.run(_repair_choices(backend, request, schema, 3))
    assert [c.text for c in done.result.choices] == ['{"a": 2}', '{"a": 2}']
    assert done.attempts == 2 and backend.requests[1].n == 1
