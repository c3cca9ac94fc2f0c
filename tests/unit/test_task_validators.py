"""Domain validators reject crafted bad outputs; the fallbacks keep the same rules."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from offramp.errors import OutputValidationFailed
from offramp.providers.llamacpp.grammar import compile_schema
from offramp.tasks.builtin import builtin_hooks, learning, mealplan
from offramp.tasks.builtin import scaffolding as scaffold
from offramp.tasks.catalog import TaskCatalog
from offramp.tasks.inputs import validate_input
from offramp.tasks.spec import resolve_schema

CATALOG = TaskCatalog.load(builtin_hooks())


def test_every_builtin_output_schema_is_enforced_by_the_grammar() -> None:
    names = [t.spec.name for t in CATALOG.all()]
    assert names == sorted(
        [
            "code-analysis",
            "examples",
            "exercises",
            "explanation",
            "flashcards",
            "meal-plan",
            "outline",
            "quiz",
            "scaffold",
            "summary",
            "tutor",
        ]
    )
    for task in CATALOG.all():
        assert task.spec.examples, task.spec.name
        for example in task.spec.examples:
            values = validate_input(task.spec.input_schema, example)
            schema = resolve_schema(task.spec.output_schema, values)
            compiled = compile_schema(schema)
            assert compiled.relaxed == (), (task.spec.name, compiled.relaxed)
            assert "root ::=" in compiled.gbnf


def question(options: list[str], answer: str, kind: str = "multiple_choice") -> dict[str, Any]:
    return {"type": kind, "question": "What is it?", "options": options, "answer": answer}


@pytest.mark.parametrize(
    ("q", "problem"),
    [
        (question(["a", "b", "c", "d"], "e"), "is not one of its options"),
        (question(["a", "A ", "c", "d"], "a"), "duplicate options"),
        (question([], "", "short_answer"), "has no answer"),
    ],
)
def test_quiz_validator_rejects_bad_answer_keys(q: dict[str, Any], problem: str) -> None:
    problems = learning.check_quiz({"questions": [q]}, {}, {})
    assert any(problem in p for p in problems), problems


def test_quiz_validator_accepts_good_keys_and_enforces_requested_types() -> None:
    good = {"questions": [question(["a", "b", "c", "d"], "c")]}
    assert learning.check_quiz(good, {"question_types": ["multiple_choice"]}, {}) == []
    problems = learning.check_quiz(good, {"question_types": ["short_answer"]}, {})
    assert problems and "use only ['short_answer']" in problems[0]
    twice = {"questions": [question(["a", "b", "c", "d"], "a")] * 2}
    assert any("repeats" in p for p in learning.check_quiz(twice, {}, {}))


def test_answer_keys_come_from_the_chosen_option() -> None:
    from offramp.tasks.hooks import RunInfo

    out = learning.quiz_answer_keys(
        {
            "questions": [
                {"type": "multiple_choice", "options": ["x", "y", "z", "w"], "answer_index": 2}
            ]
        },
        RunInfo({}, {}, "m"),
    )
    assert out["questions"][0]["answer"] == "z"


def test_flashcard_rules() -> None:
    cards = {"cards": [{"front": "Term", "back": "term."}, {"front": "term", "back": "x"}]}
    assert learning.check_distinct(cards, {}, {"items": "cards", "field": "front"}) == [
        "cards[1].front repeats cards[0].front"
    ]
    words = {"keywords": ["Solar", "lamp", "solar "]}
    assert learning.check_distinct(words, {}, {"items": "keywords"}) == [
        "keywords[2] repeats keywords[0]"
    ]
    differ = learning.check_fields_differ(
        cards, {}, {"items": "cards", "fields": ["front", "back"]}
    )
    assert differ == ["cards[0]: front and back must say different things"]


MEAL_SCHEMA = CATALOG.get("meal-plan").spec.input_schema


def meal_values(**prefs: Any) -> dict[str, Any]:
    data = {"user_preferences": prefs, "constraints": {"duration_days": 2, "servings_per_meal": 3}}
    return validate_input(MEAL_SCHEMA, data)


def plan(dishes: list[tuple[str, list[str]]], servings: int = 3) -> dict[str, Any]:
    days = []
    for i in range(0, len(dishes), 3):
        meals = {
            meal: {"dish": name, "ingredients": ingredients}
            for meal, (name, ingredients) in zip(mealplan.MEALS, dishes[i : i + 3], strict=True)
        }
        days.append({"day": i // 3 + 1, "meals": meals})
    return {
        "meal_plan": {"days": days, "servings_per_meal": servings},
        "grocery_list": {"items": []},
    }


SAFE = [
    ("Oat porridge", ["oats", "oat milk"]),
    ("Lentil soup", ["lentils", "carrot"]),
    ("Bean chili", ["kidney beans", "tomato"]),
    ("Fruit salad", ["melon", "grapes"]),
    ("Rice bowl", ["rice", "tofu"]),
    ("Vegetable curry", ["cauliflower", "coconut milk"]),
]


def test_a_plan_that_keeps_every_rule_passes() -> None:
    values = meal_values(dietary_restrictions=["vegan"], disliked_ingredients=["olives"])
    assert mealplan.check_plan(plan(SAFE), values, {}) == []


@pytest.mark.parametrize(
    ("swap", "prefs", "problem"),
    [
        (
            ("Rice bowl", ["rice", "Mushrooms"]),
            {"disliked_ingredients": ["mushroom"]},
            "disliked ingredient 'mushroom'",
        ),
        (
            ("Tomato soup", ["stock"]),
            {"disliked_ingredients": ["tomatoes"]},
            "'Tomato soup' contains 'Tomato'",
        ),
        (
            ("Rice bowl", ["rice", "chicken thigh"]),
            {"dietary_restrictions": ["vegetarian"]},
            "vegetarian",
        ),
        (
            ("Rice bowl", ["rice", "feta"]),
            {"dietary_restrictions": ["vegan"]},
            "against the vegan restriction",
        ),
        (("Pasta bake", ["pasta"]), {"dietary_restrictions": ["gluten-free"]}, "gluten-free"),
        (("Rice bowl", ["rice", "peanuts"]), {"dietary_restrictions": ["nut-free"]}, "'peanuts'"),
        (("Oat porridge", ["oats"]), {}, "repeats 'Oat porridge'"),
    ],
)
def test_meal_plan_rules_reject(
    swap: tuple[str, list[str]], prefs: dict[str, Any], problem: str
) -> None:
    dishes = [*SAFE[:4], swap, SAFE[5]]
    problems = mealplan.check_plan(plan(dishes), meal_values(**prefs), {})
    assert any(problem in p for p in problems), problems


def test_meal_plan_rules_check_days_and_servings_and_spare_lookalikes() -> None:
    values = meal_values(dietary_restrictions=["vegan", "gluten-free"])
    problems = mealplan.check_plan(plan(SAFE[:3], servings=4), values, {})
    assert "the plan has 1 days; 2 were requested" in problems
    assert "servings_per_meal must be 3" in problems
    fine = [
        *SAFE[:4],
        ("Eggplant stew", ["eggplant", "vegan cheese"]),
        ("Rice noodle salad", ["rice noodles"]),
    ]
    assert mealplan.check_plan(plan(fine), values, {}) == []


@pytest.mark.parametrize(
    "prefs",
    [
        {},
        {
            "dietary_restrictions": ["vegan", "gluten-free"],
            "disliked_ingredients": ["tomato", "onion"],
        },
        {"dietary_restrictions": ["vegetarian", "nut-free"], "cuisine_preferences": ["mexican"]},
        {"dietary_restrictions": ["pescatarian", "dairy-free"]},
    ],
)
def test_catalogue_fallback_keeps_the_rules(prefs: dict[str, Any]) -> None:
    values = validate_input(
        MEAL_SCHEMA,
        {"user_preferences": prefs, "constraints": {"duration_days": 3, "servings_per_meal": 2}},
    )
    result = mealplan.catalogue_plan(values, {})
    assert mealplan.check_plan(result, values, {}) == []
    assert len(result["meal_plan"]["days"]) == 3
    used = {i["ingredient"] for i in result["grocery_list"]["items"]}
    dinner = result["meal_plan"]["days"][0]["meals"]["dinner"]
    assert set(dinner["ingredients"]) <= used
    if prefs.get("cuisine_preferences") == ["mexican"]:
        assert "Black bean tacos" in json.dumps(result)


def test_catalogue_fallback_says_when_it_cannot_fill_the_plan() -> None:
    values = validate_input(
        MEAL_SCHEMA,
        {
            "user_preferences": {
                "dietary_restrictions": ["vegan"],
                "disliked_ingredients": ["rice", "potato", "oat milk", "onion"],
            },
            "constraints": {"duration_days": 7},
        },
    )
    with pytest.raises(OutputValidationFailed, match="fewer than the 7 days requested"):
        mealplan.catalogue_plan(values, {})


def test_scaffold_rejects_code_that_does_not_parse_or_skips_the_framework() -> None:
    broken = {"files": [{"path": "main.py", "content": "def create(:\n    pass\n"}]}
    [problem] = scaffold.check_python_parses(broken, {}, {})
    assert problem.startswith("main.py does not parse: line 1, column")
    plain = {
        "files": [
            {"path": "main.py", "content": "import os\nprint(os.name)\n"},
            {"path": "README.md", "content": "def ("},
        ]
    }
    assert scaffold.check_python_parses(plain, {}, {}) == []
    assert scaffold.check_framework(plain, {"framework": "flask"}, {}) == [
        "no Python file imports flask; this is a flask project"
    ]
    crud = {"files": [{"path": "repo.py", "content": "def create_x(): ...\ndef get_x(): ...\n"}]}
    assert scaffold.check_framework(crud, {"framework": "crud"}, {}) == [
        "no function for the 'update' operation",
        "no function for the 'delete' operation",
    ]


@pytest.mark.parametrize("framework", ["fastapi", "flask", "django", "crud"])
def test_scaffold_templates_parse_and_use_their_framework(framework: str) -> None:
    values = {
        "framework": framework,
        "project_name": "shop",
        "resource": "order",
        "description": "Orders.",
    }
    result = scaffold.from_templates(values, {})
    assert result["source"] == "template"
    assert scaffold.check_python_parses(result, values, {}) == []
    assert scaffold.check_framework(result, values, {}) == []


def test_fastapi_template_is_a_working_app(tmp_path: Path) -> None:
    values = {
        "framework": "fastapi",
        "project_name": "shop",
        "resource": "order",
        "description": "Orders.",
    }
    for f in scaffold.from_templates(values, {})["files"]:
        target = tmp_path / f["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f["content"])
    sys.path.insert(0, str(tmp_path))
    try:
        app = importlib.import_module("main").app
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("main", None)
    client = TestClient(app)
    created = client.post("/orders", json={"name": "first"}).json()
    assert client.get(f"/orders/{created['id']}").json()["name"] == "first"
    assert client.delete("/orders/99").status_code == 404
