"""Hooks of the meal-plan task: the plan's rules, the grocery list, the catalogue fallback.

The rules, checked on every plan whoever wrote it: the requested number of days, each
with every meal; the requested servings; no disliked ingredient and nothing a dietary
restriction forbids, anywhere (dish names included); no dish twice. Which words each
restriction forbids is data (``data/diets.yaml``), as is the fallback's catalogue.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from offramp.errors import OutputValidationFailed
from offramp.tasks.hooks import RunInfo, TaskHooks

MEALS = ("breakfast", "lunch", "dinner")


@cache
def _data(name: str) -> Any:
    text = resources.files("offramp.tasks").joinpath(f"data/{name}").read_text("utf-8")
    return yaml.safe_load(text)


def _pattern(term: str) -> re.Pattern[str]:
    """The word ``term`` and its plural, case-insensitive, as a whole word."""
    t = " ".join(term.lower().split())
    if t.endswith("oes"):
        t = t[:-2]
    elif t.endswith("ies"):
        t = t[:-3] + "y"
    elif t.endswith("s") and not t.endswith(("ss", "us", "is")):
        t = t[:-1]
    body = re.escape(t[:-1]) + "(?:y|ies)" if t.endswith("y") else re.escape(t) + "(?:e?s)?"
    return re.compile(rf"(?<![\w-]){body}(?![\w-])", re.IGNORECASE)


@dataclass(frozen=True)
class _Rule:
    why: str
    patterns: tuple[re.Pattern[str], ...]
    allow_when: tuple[str, ...] = ()

    def breaks(self, text: str) -> str | None:
        lowered = text.lower()
        if any(phrase in lowered for phrase in self.allow_when):
            return None
        for pattern in self.patterns:
            found = pattern.search(text)
            if found:
                return found.group(0)
        return None


def rules_for(values: dict[str, Any]) -> list[_Rule]:
    """The ingredient rules a meal-plan input asks for."""
    prefs = values.get("user_preferences") or {}
    rules = [
        _Rule(f"disliked ingredient {term!r}", (_pattern(term),))
        for term in prefs.get("disliked_ingredients") or []
        if term.strip()
    ]
    diets = _data("diets.yaml")
    for restriction in prefs.get("dietary_restrictions") or []:
        diet = diets[restriction]
        rules.append(
            _Rule(
                f"the {restriction} restriction",
                tuple(_pattern(t) for t in diet["forbid"]),
                tuple(diet.get("allow_when") or ()),
            )
        )
    return rules


def dish_problems(dish: dict[str, Any], rules: list[_Rule], where: str) -> list[str]:
    """Why ``dish`` (name and ingredients) breaks ``rules``; empty when it does not."""
    problems = []
    for text in [dish.get("dish", ""), *dish.get("ingredients", [])]:
        for rule in rules:
            word = rule.breaks(str(text))
            if word is not None:
                problems.append(f"{where}: {text!r} contains {word!r}, against {rule.why}")
    return problems


def grocery_list(days: list[dict[str, Any]]) -> dict[str, Any]:
    """Every ingredient of the plan once, with how many dishes use it, in first-use order."""
    counts: dict[str, int] = {}
    for day in days:
        for meal in MEALS:
            for item in day["meals"][meal]["ingredients"]:
                key = " ".join(str(item).lower().split())
                counts[key] = counts.get(key, 0) + 1
    return {"items": [{"ingredient": k, "used_in": n} for k, n in counts.items()]}


def assemble(output: Any, run: RunInfo) -> Any:
    """The model's days as the task's result: numbered days, servings, grocery list."""
    days = [{"day": i + 1, "meals": day} for i, day in enumerate(output["days"])]
    return _plan(days, output["servings"])


def _plan(days: list[dict[str, Any]], servings: Any) -> dict[str, Any]:
    return {
        "meal_plan": {"days": days, "servings_per_meal": servings},
        "grocery_list": grocery_list(days),
    }


def check_plan(result: Any, values: dict[str, Any], args: dict[str, Any]) -> list[str]:
    """Every rule of the module docstring; each problem names the day and meal."""
    constraints = values.get("constraints") or {}
    plan = result["meal_plan"]
    problems: list[str] = []
    want_days, want_servings = (
        constraints.get("duration_days"),
        constraints.get("servings_per_meal"),
    )
    if len(plan["days"]) != want_days:
        problems.append(f"the plan has {len(plan['days'])} days; {want_days} were requested")
    if plan["servings_per_meal"] != want_servings:
        problems.append(f"servings_per_meal must be {want_servings}")
    rules = rules_for(values)
    seen: dict[str, str] = {}
    for day in plan["days"]:
        for meal in MEALS:
            where = f"day {day['day']} {meal}"
            dish = day["meals"].get(meal)
            if dish is None:
                problems.append(f"{where} is missing")
                continue
            problems += dish_problems(dish, rules, where)
            name = " ".join(str(dish.get("dish", "")).lower().split())
            if name in seen:
                problems.append(f"{where} repeats {dish.get('dish')!r} from {seen[name]}")
            seen.setdefault(name, where)
    return problems


def catalogue_plan(values: dict[str, Any], context: dict[str, Any]) -> Any:
    """A plan from the built-in catalogue that keeps every rule, preferring the requested
    cuisines; OutputValidationFailed when the catalogue cannot fill every meal."""
    constraints = values["constraints"]
    n_days = constraints["duration_days"]
    liked = [c.lower() for c in values["user_preferences"].get("cuisine_preferences") or []]
    rules = rules_for(values)
    picks: dict[str, list[dict[str, Any]]] = {}
    for meal in MEALS:
        fits = [
            {"dish": r["name"], "ingredients": list(r["ingredients"]), "cuisine": r["cuisine"]}
            for r in _data("recipes.yaml")[meal]
            if not dish_problems({"dish": r["name"], "ingredients": r["ingredients"]}, rules, "")
        ]
        fits.sort(key=lambda d: d["cuisine"] not in liked)  # stable: catalogue order kept
        if len(fits) < n_days:
            raise OutputValidationFailed(
                f"the fallback catalogue has {len(fits)} {meal} dishes that fit these "
                f"restrictions, fewer than the {n_days} days requested"
            )
        picks[meal] = [{"dish": d["dish"], "ingredients": d["ingredients"]} for d in fits]
    days = [
        {"day": i + 1, "meals": {meal: picks[meal][i] for meal in MEALS}} for i in range(n_days)
    ]
    return _plan(days, constraints["servings_per_meal"])


def register(hooks: TaskHooks) -> None:
    hooks.finish.register("meal-plan-assemble", assemble)
    hooks.validators.register("meal-plan-rules", check_plan)
    hooks.fallbacks.register("meal-plan-catalogue", catalogue_plan)
