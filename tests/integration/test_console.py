"""The console in a real headless Chromium (driven by chromedriver) against a real server
on the bundled models, with traffic sent by the official openai SDK: sign-in, every
page's numbers against the ledger's own sums, keys made and revoked through the page,
CSRF, the viewer role, live updates. Screenshots of every page land in the test's
temporary folder."""

from __future__ import annotations

import csv
import io
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from pydantic import SecretStr
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import Engine, func, select

from offramp.ledger.schema import usage
from offramp.ledger.store import open_engine
from offramp.local.pool import ModelPool
from offramp.settings import Settings
from tests.servers import ServerThread

ADMIN = "admin-console-secret"
VIEWER = "viewer-console-secret"
CHAT: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "Name one colour."}],
    "temperature": 0,
    "max_tokens": 6,
}
PAGES = ("overview", "routes", "models", "keys", "usage", "tasks")


@dataclass
class Console:
    server: ServerThread
    settings: Settings
    engine: Engine
    shots: Path
    keys: dict[str, str]  # name -> secret

    @property
    def url(self) -> str:
        return self.server.base_url + "/console"

    def client(self, secret: str) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=self.server.base_url + "/v1", api_key=secret, max_retries=0, timeout=120
        )

    def admin_http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.server.base_url, headers={"Authorization": f"Bearer {ADMIN}"}
        )

    def ledger_rows(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(usage)).scalar_one())

    def wait_for_rows(self, n: int) -> None:
        deadline = time.monotonic() + 15
        while self.ledger_rows() < n:  # records reach the database a batch at a time
            assert time.monotonic() < deadline, f"{self.ledger_rows()} of {n} records"
            time.sleep(0.1)

    def sums(self, *where: Any) -> dict[str, Any]:
        """The ledger's own sums (straight SQL, independent of the console's code)."""
        c = usage.c
        query = select(
            func.count(),
            func.coalesce(func.sum(c.cost_usd), 0.0),
            func.coalesce(func.sum(c.openai_cost_usd), 0.0),
            func.coalesce(func.sum(c.prompt_tokens), 0),
            func.coalesce(func.sum(c.completion_tokens), 0),
        ).where(*where)
        with self.engine.connect() as conn:
            n, cost, openai_cost, prompt, completion = conn.execute(query).one()
            errors = conn.execute(
                select(func.count()).where(*where, (c.status < 200) | (c.status >= 300))
            ).scalar_one()
            hits = conn.execute(
                select(func.count()).where(*where, c.cache_hit.is_(True), c.status == 200)
            ).scalar_one()
        return {
            "requests": n,
            "errors": errors,
            "cache_hits": hits,
            "cost_usd": float(cost),
            "openai_cost_usd": float(openai_cost),
            "prompt_tokens": prompt,
            "completion_tokens": completion,
        }


def _send_traffic(console: Console) -> int:
    """Chat (with cache hits and a stream), embeddings and a refused request; returns
    how many requests the ledger should hold."""
    app = console.client(console.keys["app"])
    reports = console.client(console.keys["reports"])
    for _ in range(3):
        app.chat.completions.create(**CHAT)  # the 2nd and 3rd come from the cache
    list(app.chat.completions.create(**{**CHAT, "temperature": 0.7, "seed": 3}, stream=True))
    reports.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    with pytest.raises(openai.PermissionDeniedError):  # recorded: a 403 for this key
        reports.chat.completions.create(**CHAT)
    return 6


@pytest.fixture(scope="module")
def console(
    settings: Settings, pool: ModelPool, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Console]:
    folder = tmp_path_factory.mktemp("console")
    mine = settings.model_copy(
        update={
            "ledger_path": folder / "ledger.db",
            "cache": True,
            "auth": True,
            "admin_key": SecretStr(ADMIN),
            "console_viewer_key": SecretStr(VIEWER),
        }
    )
    with ServerThread(mine, pool) as server:
        engine = open_engine(mine)
        found = Console(server, mine, engine, folder / "screenshots", {})
        found.shots.mkdir()
        with found.admin_http() as admin:
            for name, body in (
                ("app", {"name": "app", "rpm": 100, "tpm": 50_000, "budget_usd": 5.0}),
                ("reports", {"name": "reports", "models": ["text-embedding-3-small"]}),
            ):
                made = admin.post("/admin/keys", json=body)
                assert made.status_code == 201, made.text
                found.keys[name] = made.json()["secret"]
                found.keys[name + "_id"] = made.json()["id"]
        found.wait_for_rows(_send_traffic(found))
        yield found
        engine.dispose()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, "make browser installs Debian's chromium and chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1700",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    the_browser = webdriver.Chrome(service=Service(driver), options=options)
    try:
        yield the_browser
    finally:
        the_browser.quit()


def _wait(browser: WebDriver, check: Callable[[WebDriver], Any], timeout: float = 30) -> Any:
    return WebDriverWait(browser, timeout, poll_frequency=0.1).until(check)


def _sign_in(browser: WebDriver, console: Console, key: str, role: str | None = None) -> None:
    """Sign in through the form; with ``role``, wait until the console shows it."""
    browser.delete_all_cookies()
    browser.get(console.url)
    field = _wait(browser, lambda b: b.find_element(By.ID, "key"))
    field.send_keys(key)
    browser.find_element(By.CSS_SELECTOR, "#sign-in button").click()
    if role is not None:
        _wait(
            browser,
            lambda b: b.find_elements(By.ID, "role") and b.find_element(By.ID, "role").text == role,
        )


def _open(browser: WebDriver, console: Console, page: str) -> None:
    browser.get(f"{console.url}#{page}")
    _wait(
        browser, lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-loaded") == page
    )


# One read of the page in one script, so a redraw by the page's polling cannot interleave.
_READ = """
const [selector, attrs] = arguments;
return Array.from(document.querySelectorAll(selector)).map((el) => {
  const out = {text: el.textContent.trim(), cells: Array.from(el.querySelectorAll("td")).map((td) => td.textContent.trim())};
  const value = el.querySelector(".value");
  if (value) out.value = value.textContent.trim();
  for (const a of attrs) out[a] = el.getAttribute(a);
  return out;
});
"""


def _read(browser: WebDriver, selector: str, *attrs: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = browser.execute_script(_READ, selector, list(attrs))
    return found


def _tiles(browser: WebDriver, root: str) -> dict[str, tuple[str, str]]:
    """A group of tiles: metric -> (the text shown, the number behind it)."""
    return {
        t["data-metric"]: (t["value"], t["data-value"])
        for t in _read(browser, f"{root} .tile", "data-metric", "data-value")
    }


def _click(browser: WebDriver, selector: str) -> WebElement:
    """Click the element (found again if the page redrew it meanwhile)."""

    def click(b: WebDriver) -> WebElement | bool:
        try:
            element = b.find_element(By.CSS_SELECTOR, selector)
            element.click()
        except (NoSuchElementException, StaleElementReferenceException):
            return False
        return element

    found: WebElement = _wait(browser, click)
    return found


def _usd(value: float) -> str:
    return f"${value:.6f}"


def _ms(value: float) -> str:
    return f"{value:.1f} ms" if value < 10 else f"{round(value)} ms"


def _shot(browser: WebDriver, console: Console, name: str) -> None:
    path = console.shots / f"{name}.png"
    assert browser.save_screenshot(str(path)) and path.stat().st_size > 10_000


def test_no_console_without_an_admin_key(
    settings: Settings, pool: ModelPool, tmp_path: Path
) -> None:
    mine = settings.model_copy(update={"ledger_path": tmp_path / "l.db"})
    with ServerThread(mine, pool) as server:
        for path in ("/console", "/console/assets/console.js", "/console/api/overview"):
            assert httpx.get(server.base_url + path).status_code == 404, path
        signed = httpx.post(server.base_url + "/console/sign-in", data={"key": "anything"})
        assert signed.status_code == 404


def test_sign_in_is_required_and_sets_a_strict_cookie(console: Console, browser: WebDriver) -> None:
    for path in ("/api/overview", "/api/keys", "/api/usage", "/api/usage.csv", "/api/session"):
        refused = httpx.get(console.url + path)
        assert refused.status_code == 401, path
        assert refused.json()["error"]["code"] == "sign_in_required"
    forged = httpx.get(
        console.url + "/api/overview", cookies={"offramp_console": "admin.9999999999.x.y"}
    )
    assert forged.status_code == 401
    # the page itself is only the sign-in form
    browser.delete_all_cookies()
    browser.get(console.url + "#keys")
    _wait(browser, lambda b: b.find_element(By.ID, "key"))
    assert not browser.find_elements(By.ID, "page-keys")
    _sign_in(browser, console, "not-the-key")
    _wait(browser, lambda b: "does not sign in" in b.find_element(By.CSS_SELECTOR, ".error").text)
    assert browser.get_cookies() == []
    _sign_in(browser, console, ADMIN, "admin")
    _wait(browser, lambda b: b.find_element(By.ID, "role").text == "admin")
    cookie = {c["name"]: c for c in browser.get_cookies()}["offramp_console"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/console"
    assert not cookie["secure"]  # plain http here
    assert browser.execute_script("return document.cookie") == ""  # scripts cannot read it
    behind_tls = httpx.post(
        console.url + "/sign-in", data={"key": ADMIN}, headers={"X-Forwarded-Proto": "https"}
    )
    assert behind_tls.status_code == 303
    assert "secure" in behind_tls.headers["set-cookie"].lower()
    # a page elsewhere cannot sign the browser in under a key it chose
    browser.delete_all_cookies()
    forged_form = (
        f"<form method=post action='{console.url}/sign-in'><input name=key value='{VIEWER}'>"
        "</form><script>document.forms[0].submit()</script>"
    )
    browser.get("data:text/html," + forged_form)
    _wait(browser, lambda b: "cross_origin" in b.page_source)
    assert browser.get_cookies() == []
    cross = httpx.post(
        console.url + "/sign-in", data={"key": ADMIN}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert cross.status_code == 403 and "set-cookie" not in cross.headers
    _sign_in(browser, console, ADMIN, "admin")
    # signing out ends the session
    browser.find_element(By.ID, "sign-out").click()
    _wait(browser, lambda b: b.find_elements(By.ID, "key"))
    assert "offramp_console" not in {c["name"] for c in browser.get_cookies()}


def test_every_page_shows_the_ledgers_numbers(
    console: Console, browser: WebDriver, pool: ModelPool
) -> None:
    _sign_in(browser, console, ADMIN, "admin")
    _open(browser, console, "overview")
    whole = console.sums()
    assert whole["requests"] == 6 and whole["errors"] == 1 and whole["cache_hits"] == 2
    tiles = _tiles(browser, "#overview-tiles")
    assert tiles["requests"][0] == "6"
    for metric in ("cost_usd", "openai_cost_usd"):
        text, raw = tiles[metric]
        assert text == _usd(whole[metric]) and float(raw) == pytest.approx(whole[metric], rel=1e-9)
    assert tiles["savings_usd"][0] == _usd(whole["openai_cost_usd"] - whole["cost_usd"])
    assert whole["openai_cost_usd"] > 0
    assert tiles["error_rate"][0] == f"{100 / 6:.1f}%"
    assert tiles["cache_hit_rate"][0] == f"{100 * 2 / 5:.1f}%"
    with console.engine.connect() as conn:
        latencies = sorted(
            conn.execute(select(usage.c.latency_ms).where(usage.c.status == 200)).scalars()
        )
    assert tiles["p95_latency_ms"][0] == _ms(latencies[-1])  # of 5 served: the slowest
    assert tiles["p50_latency_ms"][0] == _ms(latencies[2])
    bars = _read(browser, "#chart-requests rect[data-value]", "data-value")
    assert len(bars) == 30 and sum(float(b["data-value"]) for b in bars) == 6
    spend = _read(browser, '#chart-cost g[data-series="OpenAI-equivalent"] circle', "data-value")
    drawn = sum(float(c["data-value"]) for c in spend)
    assert drawn == pytest.approx(whole["openai_cost_usd"], rel=1e-9)
    states = {
        r["data-alert"]: r["data-state"]
        for r in _read(browser, "#alerts tr[data-alert]", "data-alert", "data-state")
    }
    assert states["OfframpHighErrorRate"] == "firing"  # 1 of 6 > 5%
    assert states["OfframpLowCacheHitRate"] == "firing"  # 2 of 5 < 70%
    assert states["OfframpBreakerOpen"] == "ok" and states["OfframpCostSpike"] == "no data"
    _shot(browser, console, "overview")

    _open(browser, console, "routes")
    for route in ("smollm2-135m-instruct", "all-minilm-l6-v2"):
        box = f'.route[data-route="{route}"]'
        shown = _tiles(browser, box)["requests"][0]
        assert shown == str(console.sums(usage.c.route == route)["requests"])
        assert [
            r["data-breaker"] for r in _read(browser, f"{box} tr[data-breaker]", "data-breaker")
        ] == ["closed"]
        assert _read(browser, f"{box} .chart svg")  # its latency and error-rate charts
    _shot(browser, console, "routes")

    _open(browser, console, "models")
    rows = {
        r["data-model"]: r["cells"]
        for r in _read(browser, "#models-table tr[data-model]", "data-model")
    }
    assert set(rows) == {s.name for s in pool.models.specs}
    assert all(cells[3] == "yes" for cells in rows.values())  # the pool is preloaded
    assert rows["smollm2-135m-instruct"][4].isdigit() and rows["smollm2-135m-instruct"][6] == "0"
    assert float(_tiles(browser, "#process-tiles")["rss_bytes"][1]) > 50 * 2**20
    _shot(browser, console, "models")

    _open(browser, console, "keys")
    keys = {
        r["data-key"]: r
        for r in _read(
            browser, "#keys-table tr[data-key]", "data-key", "data-requests", "data-spent"
        )
    }
    for name in ("app", "reports"):
        key_id = console.keys[name + "_id"]
        mine = console.sums(usage.c.key_id == key_id)
        assert int(keys[key_id]["data-requests"]) == mine["requests"]
        assert float(keys[key_id]["data-spent"]) == pytest.approx(mine["cost_usd"])
    app_row = keys[console.keys["app_id"]]["text"]
    assert "/ 100" in app_row and "/ 50000" in app_row and "/ $5.000000" in app_row
    _shot(browser, console, "keys")

    _open(browser, console, "usage")
    _choose(browser, "key_id", console.keys["reports_id"])
    browser.find_element(By.CSS_SELECTOR, "#usage-filter button").click()
    reports = console.sums(usage.c.key_id == console.keys["reports_id"])
    _wait(browser, lambda b: _tiles(b, "#usage-tiles")["requests"][0] == str(reports["requests"]))
    tiles = _tiles(browser, "#usage-tiles")
    assert reports["requests"] == 2 and tiles["errors"][0] == "1"
    assert tiles["prompt_tokens"][0] == str(reports["prompt_tokens"])
    assert tiles["cost_usd"][0] == _usd(reports["cost_usd"])
    assert len(_read(browser, "#usage-table tr[data-request]")) == 2
    href = _read(browser, "#usage-csv", "href")[0]["href"]
    exported = browser.execute_async_script(
        "fetch(arguments[0]).then(r => r.text()).then(arguments[1])", href
    )
    lines = list(csv.DictReader(io.StringIO(exported)))
    assert len(lines) == 2 and {r["key_id"] for r in lines} == {console.keys["reports_id"]}
    assert sorted(r["status"] for r in lines) == ["200", "403"]
    _shot(browser, console, "usage")

    _open(browser, console, "tasks")
    listed = [r["text"] for r in _read(browser, "#tasks-list a")]
    catalogue = httpx.get(
        console.server.base_url + "/v1/tasks",
        headers={"Authorization": f"Bearer {console.keys['app']}"},
    ).json()["data"]
    assert listed == [t["name"] for t in catalogue]
    _shot(browser, console, "tasks")


def _choose(browser: WebDriver, name: str, value: str) -> None:
    """Pick ``value`` in a filter (its options are refilled as the page polls)."""

    def pick(b: WebDriver) -> bool:
        try:
            select = b.find_element(By.CSS_SELECTOR, f'#usage-filter select[name="{name}"]')
            select.find_element(By.CSS_SELECTOR, f'option[value="{value}"]').click()
            return select.get_attribute("value") == value
        except (NoSuchElementException, StaleElementReferenceException):
            return False

    _wait(browser, pick)


def test_a_key_made_in_the_page_works_until_revoked_there(
    console: Console, browser: WebDriver
) -> None:
    _sign_in(browser, console, ADMIN, "admin")
    _open(browser, console, "keys")
    form = browser.find_element(By.ID, "new-key")
    form.find_element(By.NAME, "name").send_keys("made-in-console")
    form.find_element(By.NAME, "rpm").send_keys("30")
    form.find_element(By.NAME, "models").send_keys("gpt-4o-mini")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    secret = _wait(browser, lambda b: b.find_element(By.ID, "new-secret-value").text)
    key_id = browser.find_element(By.ID, "new-secret").get_attribute("data-key")
    row = f'tr[data-key="{key_id}"]'
    _wait(browser, lambda b: _read(b, row))
    assert (
        "made-in-console" in _read(browser, row)[0]["text"]
        and "/ 30" in _read(browser, row)[0]["text"]
    )
    client = console.client(secret)
    answer = client.chat.completions.create(**CHAT, extra_headers={"Cache-Control": "no-cache"})
    assert answer.choices[0].message.content
    with pytest.raises(openai.PermissionDeniedError):  # its model list holds
        client.embeddings.create(model="text-embedding-3-small", input="a")
    revoke = _click(browser, f"{row} button[data-revoke]")
    assert revoke.text == "Confirm revoke"  # a second click confirms; polling waits meanwhile
    revoke.click()
    _wait(browser, lambda b: not _read(b, row))
    with pytest.raises(openai.AuthenticationError) as refused:  # at once on this replica
        client.chat.completions.create(**CHAT)
    assert refused.value.code == "invalid_api_key"
    browser.find_element(By.ID, "show-revoked").click()
    _wait(browser, lambda b: _read(b, row))
    assert "revoked" in _read(browser, row)[0]["text"]


def _session(console: Console, key: str) -> tuple[httpx.Client, str]:
    http = httpx.Client(base_url=console.url)
    assert http.post("/sign-in", data={"key": key}).status_code == 303
    return http, http.get("/api/session").json()["csrf"]


def test_a_change_without_the_csrf_token_is_refused(console: Console) -> None:
    http, csrf = _session(console, ADMIN)
    body = {"name": "forged"}
    for headers in ({}, {"X-CSRF-Token": "0" * 64}, {"X-CSRF-Token": csrf + "x"}):
        refused = http.post("/api/keys", json=body, headers=headers)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
    revoke = http.delete(f"/api/keys/{console.keys['app_id']}")
    assert revoke.status_code == 403
    ran = http.post("/api/tasks/code-analysis", json={"input": {"code": "x", "language": "python"}})
    assert ran.status_code == 403
    with console.admin_http() as admin:
        names = [k["name"] for k in admin.get("/admin/keys").json()["data"]]
    assert "forged" not in names and "app" in names  # nothing changed
    # another session's token is no good either
    _, other = _session(console, ADMIN)
    assert http.post("/api/keys", json=body, headers={"X-CSRF-Token": other}).status_code == 403
    made = http.post("/api/keys", json=body, headers={"X-CSRF-Token": csrf})
    assert made.status_code == 201 and made.json()["secret"].startswith("sk-offramp-")
    bad = http.post("/api/keys", json={"name": "x", "rpm": 0}, headers={"X-CSRF-Token": csrf})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "rpm"
    assert http.get("/api/usage?status=teapot").json()["error"]["param"] == "status"
    assert http.get("/api/overview?window=2y").json()["error"]["param"] == "window"
    assert http.get("/api/usage?since=yesterday").json()["error"]["param"] == "query.since"
    assert http.get("/api/usage?limit=0").json()["error"]["param"] == "query.limit"
    token = {"X-CSRF-Token": csrf}
    missing = http.post("/api/tasks/no-such-task", json={"input": {}}, headers=token)
    assert missing.status_code == 404
    broken = http.post(
        "/api/keys", content=b"{not json", headers={**token, "Content-Type": "application/json"}
    )
    assert broken.status_code == 400
    extra = http.post("/api/tasks/code-analysis", json={"input": {}, "x": 1}, headers=token)
    assert extra.status_code == 400 and extra.json()["error"]["param"] == "x"


def test_the_viewer_reads_everything_and_changes_nothing(
    console: Console, browser: WebDriver
) -> None:
    _sign_in(browser, console, VIEWER, "viewer")
    _open(browser, console, "keys")
    assert not browser.find_element(By.ID, "new-key").is_displayed()
    assert not browser.find_elements(By.CSS_SELECTOR, "button[data-revoke]")
    assert _read(browser, f'tr[data-key="{console.keys["app_id"]}"]')
    http, csrf = _session(console, VIEWER)
    refused = http.post("/api/keys", json={"name": "v"}, headers={"X-CSRF-Token": csrf})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "read_only"
    assert http.get("/api/overview").status_code == 200


def test_pages_update_without_reloading(console: Console, browser: WebDriver) -> None:
    _sign_in(browser, console, ADMIN, "admin")
    _open(browser, console, "overview")
    before = int(_tiles(browser, "#overview-tiles")["requests"][0])
    browser.execute_script("window.__same_page = true")
    console.client(console.keys["app"]).chat.completions.create(
        **CHAT, extra_headers={"Cache-Control": "no-cache"}
    )
    _wait(
        browser,
        lambda b: _tiles(b, "#overview-tiles")["requests"][0] == str(before + 1),
        timeout=20,
    )
    assert browser.execute_script("return window.__same_page") is True  # no reload


def test_a_task_runs_from_its_form(console: Console, browser: WebDriver) -> None:
    _sign_in(browser, console, ADMIN, "admin")
    _open(browser, console, "tasks")
    browser.find_element(By.CSS_SELECTOR, '#tasks-list a[data-task="code-analysis"]').click()
    _wait(browser, lambda b: b.find_element(By.ID, "task-name").text == "code-analysis")
    schema = browser.find_element(By.ID, "task-input-schema").get_attribute("textContent") or ""
    assert '"code"' in schema and '"language"' in schema
    code = browser.find_element(By.CSS_SELECTOR, '#task-fields textarea[name="code"]')
    code.clear()
    code.send_keys("def f(x:\n    return x\n")
    browser.find_element(By.CSS_SELECTOR, "#task-form button[type=submit]").click()
    result = _wait(
        browser,
        lambda b: b.find_element(By.CSS_SELECTOR, '#task-result[data-state="done"]'),
        timeout=240,
    )
    assert '"object": "task.result"' in result.text and '"syntax_errors"' in result.text
    # one ledger record for the run, found in the explorer by its task
    deadline = time.monotonic() + 15
    while (ran := console.sums(usage.c.task == "code-analysis"))["requests"] == 0:
        assert time.monotonic() < deadline, "the run was not recorded"
        time.sleep(0.1)
    assert ran["requests"] == 1 and ran["completion_tokens"] > 0
    _open(browser, console, "usage")
    _choose(browser, "task", "code-analysis")
    browser.find_element(By.CSS_SELECTOR, "#usage-filter button").click()
    _wait(browser, lambda b: _tiles(b, "#usage-tiles")["requests"][0] == "1")
    shown = _read(browser, "#usage-table tr[data-request]")
    assert len(shown) == 1 and shown[0]["cells"][1:3] == ["task", "code-analysis"]
    assert _tiles(browser, "#usage-tiles")["completion_tokens"][0] == str(ran["completion_tokens"])
