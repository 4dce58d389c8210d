"""The planners' dashboard (`GET /`) in headless Chromium, over a real API process serving
demo gold built by the real ingestor, transformer and forecaster.

Chromium runs as a plain subprocess: `--dump-dom` prints the DOM once the page's scripts have
run (`--virtual-time-budget` lets them finish; pending fetches hold virtual time back) and
`--screenshot` saves what a planner would see, under `test-artifacts/dashboard/`.
The page marks what it drew: `data-rendered` and `data-points` on each chart, and
`data-ready` / `data-error` on <body>.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from shared.settings import NovaSettings
from shared.storage import Lake
from tests.api.runs import gold, publish_run, with_counts
from tests.conftest import REPO_ROOT, free_port

CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
ARTIFACTS = REPO_ROOT / "test-artifacts" / "dashboard"
BUCKET_DAYS = {"day": 1, "week": 7, "month": 30.4375}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}

# a skip mark, not a fixture: it skips before the session's demo gold is built
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None, reason="no Chromium: install Debian's chromium package (.ci/run does)"
    ),
]


# --- a small DOM from Chromium's serialized HTML --------------------------------------------


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        return " ".join(c if isinstance(c, str) else c.text() for c in self.children)

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.walk()

    def find(self, tag: str | None = None, **attrs: str) -> list[Node]:
        """Descendants with this tag (any if None) whose attributes contain `attrs`; a
        value of "*" only asks that the attribute exists (underscores stand for dashes)."""
        wanted = {k.replace("_", "-"): v for k, v in attrs.items()}
        return [
            n
            for n in self.walk()
            if (tag is None or n.tag == tag)
            and all(k in n.attrs and v in ("*", n.attrs[k]) for k, v in wanted.items())
        ]

    def by_id(self, element_id: str) -> Node:
        found = self.find(id=element_id)
        assert found, f"no element #{element_id}"
        return found[0]


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.root = Node("document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.stack[-1].children.append(data.strip())


def parse(html: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(html)
    return builder.root


# --- the API and the browser ----------------------------------------------------------------


def start_api(var: Path, log: Path, **settings: str) -> tuple[subprocess.Popen[bytes], str]:
    """`python -m services.api` on `var`; returns the process and its base URL once ready."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOVA_")}
    env |= {
        "NOVA_VAR_DIR": str(var),
        "NOVA_API__HOST": "127.0.0.1",
        "NOVA_API__PORT": str(port),
        "NOVA_API__FOLLOW_EVENTS": "false",
        **{f"NOVA_API__{k.upper()}": v for k, v in settings.items()},
    }
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.api"],
            cwd=REPO_ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the API exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.terminate()
    process.wait(10)
    raise AssertionError(f"the API was not ready within 30 s:\n{log.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


@pytest.fixture(scope="module")
def browser() -> str:
    assert CHROMIUM is not None  # the module is skipped otherwise
    return CHROMIUM


@pytest.fixture(scope="module")
def api(browser, demo_gold, tmp_path_factory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("dashboard") / "api.log"
    process, url = start_api(demo_gold, log)
    try:
        yield url
    finally:
        stop(process)


def render(browser: str, url: str, screenshot: str, profile: Path) -> Node:
    """Load `url` in headless Chromium; save a screenshot, return the DOM after scripts ran."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / screenshot
    shot.unlink(missing_ok=True)
    result = subprocess.run(
        [
            browser,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--window-size=1400,1800",
            "--virtual-time-budget=15000",
            f"--screenshot={shot}",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        timeout=90,
        check=False,
    )
    stderr = result.stderr.decode(errors="replace")[-2000:]
    assert result.returncode == 0, f"chromium failed ({result.returncode}):\n{stderr}"
    assert shot.is_file() and shot.stat().st_size > 10_000, f"no screenshot:\n{stderr}"
    dom = parse(result.stdout.decode())
    body = dom.find("body")
    assert body, f"no DOM from chromium:\n{stderr}"
    attrs = body[0].attrs
    assert attrs.get("data-ready") == "true", f"page never got ready: {attrs}\n{stderr}"
    return dom


def no_error(dom: Node) -> None:
    body = dom.find("body")[0]
    assert "data-error" not in body.attrs, body.attrs["data-error"]


def item_with_forecast_and_policy(url: str) -> tuple[str, dict, dict, str]:
    """An item with an all-sites forecast series and a drawable reorder point; alerts first."""
    alerts = httpx.get(f"{url}/api/v1/inventory/alerts?limit=50").json()["alerts"]
    policies = httpx.get(f"{url}/api/v1/inventory/policy?limit=500").json()["policies"]
    codes = [a["item_code"] for a in alerts] + [p["item_code"] for p in policies]
    for code in dict.fromkeys(codes):
        policy = httpx.get(f"{url}/api/v1/inventory/policy", params={"item": code})
        forecast = httpx.get(f"{url}/api/v1/forecasts", params={"item": code})
        if policy.status_code != 200 or forecast.status_code != 200:
            continue
        rule = policy.json()["policies"][0]
        overall = [s for s in forecast.json()["series"] if s["site_code"] is None]
        if rule["reorder_point"] and (rule["lead_time_mean_days"] or 0) > 0 and overall:
            return code, rule, overall[0], forecast.json()["bucket"] or "week"
    raise AssertionError("the demo gold has no item with both a forecast and a policy")


# --- the tests ------------------------------------------------------------------------------


def test_overview_shows_status_alerts_and_accuracy(browser, api, tmp_path):
    status = httpx.get(f"{api}/api/v1/status").json()
    alerts = httpx.get(f"{api}/api/v1/inventory/alerts?limit=50").json()
    accuracy = httpx.get(f"{api}/api/v1/kpis/forecast-accuracy?by=demand_class").json()
    assert alerts["alerts"], "the demo gold should have at least one inventory alert"

    dom = render(browser, f"{api}/", "overview.png", tmp_path / "profile")
    no_error(dom)

    # pipeline status: every gold table with the version the API serves, build and run ids
    shown = {
        r.attrs["data-table"]: int(r.attrs["data-version"]) for r in dom.find("tr", data_table="*")
    }
    assert shown == {f"gold.{name}": v for name, v in status["versions"].items()}
    stats = dom.by_id("status-stats").text()
    assert status["build_id"][:8] in stats
    assert status["last_forecast_run"]["run_id"][:8] in stats
    assert "Quarantine" in stats

    # alerts: one row per alert, each linking to its item page
    rows = dom.by_id("alerts").find("tr", data_item="*")
    assert [r.attrs["data-item"] for r in rows] == [a["item_code"] for a in alerts["alerts"]]
    first = rows[0].find("a")[0].attrs["href"]
    assert first == f"#/item/{quote(alerts['alerts'][0]['item_code'])}"

    # accuracy: one bar per group and metric drawn, and the table
    chart = dom.by_id("accuracy-chart")
    assert chart.attrs.get("data-rendered") == "true"
    assert int(chart.attrs["data-points"]) > 0
    assert chart.find("rect")
    table_text = dom.by_id("accuracy").text()
    for group in accuracy["groups"]:
        assert str(group["group"]) in table_text
    assert "coverage" not in table_text.lower()
    # calibration of the run's quantiles, or why it is n/a
    calibration = accuracy["overall"]["calibration"]
    chart = dom.by_id("calibration-chart")
    if calibration:
        assert int(chart.attrs["data-points"]) == len(calibration)
        assert len(dom.by_id("calibration").find("tr", data_level="*")) == len(calibration)
    else:
        assert chart.attrs.get("data-rendered") == "false" and "n/a" in chart.text()
        assert accuracy["note"] and "n/a" in dom.by_id("accuracy").text()
    # the forecast run's operator figures, as the forecaster recorded them
    run = status["last_forecast_run"]
    stages = dom.by_id("run-stages").find("tr", data_key="*")
    assert {r.attrs["data-key"] for r in stages} == set(run["stage_seconds"])
    classes = dom.by_id("run-classes").find("tr", data_key="*")
    assert {r.attrs["data-key"] for r in classes} == set(run["series_by_class"])
    failures = dom.by_id("run-failures").find("tr", data_key="*")
    assert {r.attrs["data-key"] for r in failures} == set(run["failures_by_model"])
    assert run["gold_build_id"][:8] in stats
    models = dom.by_id("run-models").find("tr", data_key="*")
    assert {r.attrs["data-key"] for r in models} == set(
        status["last_forecast_run"]["selected_models"]
    )


def test_item_page_draws_demand_forecast_fan_and_reorder_point(browser, api, tmp_path):
    code, policy, overall, bucket = item_with_forecast_and_policy(api)
    demand = httpx.get(f"{api}/api/v1/demand", params={"item": code, "grain": "week"}).json()

    dom = render(browser, f"{api}/#/item/{quote(code)}", "item.png", tmp_path / "profile")
    no_error(dom)
    assert "hidden" in dom.by_id("view-home").attrs
    assert code in dom.by_id("item-title").text()

    demand_chart = dom.by_id("demand-chart")
    assert demand_chart.attrs.get("data-rendered") == "true", demand_chart.attrs
    assert int(demand_chart.attrs["data-points"]) == len(demand["points"]) > 0
    assert demand_chart.find("canvas")

    fan = dom.by_id("forecast-chart")
    assert fan.attrs.get("data-rendered") == "true", fan.attrs
    assert int(fan.attrs["data-points"]) > 0
    assert int(fan.attrs["data-forecast-points"]) == len(overall["points"]) > 0
    assert fan.find("canvas")
    # the reorder point (units over the lead time) as a line in units per forecast bucket,
    # named in the legend and explained in the caption
    assert fan.attrs.get("data-reorder-line") == "true"
    assert "reorder point" in fan.text()
    per_bucket = policy["reorder_point"] / policy["lead_time_mean_days"] * BUCKET_DAYS[bucket]
    assert float(fan.attrs["data-reorder-per-bucket"]) == pytest.approx(per_bucket)
    # what the reorder point promises, at the run's service level, beside the line
    level = f"{policy['service_level'] * 100:g} %"
    promise = (
        f"Reorder point ({level}): order when stock on hand plus on order falls to this level; "
        f"in {level} of replenishment cycles the order arrives before the shelf runs out, given "
        "this part's demand history and lead times."
    )
    assert promise in dom.by_id("forecast-caption").text()
    assert promise in dom.by_id("demand-caption").text()


def test_overview_shows_calibration_and_the_runs_operator_figures(browser, gold_var, tmp_path):
    """A run that recorded the counts and the operator figures (written here, as the
    forecaster writes them since issue 12)."""
    lake = Lake.from_settings(NovaSettings(var_dir=gold_var).storage)
    stages = {"read": 1.25, "backtest": 30.5, "select": 0.5, "final_fit": 4.0, "policy": 2.0,
              "commit": 0.75}  # fmt: skip
    publish_run(
        lake,
        with_counts(gold(lake, "forecast_accuracy"), seed=9),
        gold_build_id="feedc0de" * 4,
        stage_seconds=json.dumps(stages),
        series_by_class=json.dumps({"smooth": 4, "lumpy": 20}),
        failures_by_model=json.dumps({"AutoETS": 3}),
    )
    process, url = start_api(gold_var, tmp_path / "api.log")
    try:
        accuracy = httpx.get(f"{url}/api/v1/kpis/forecast-accuracy").json()
        dom = render(browser, f"{url}/", "overview-calibration.png", tmp_path / "profile")
    finally:
        stop(process)
    no_error(dom)
    calibration = accuracy["overall"]["calibration"]
    assert len(calibration) == 10
    chart = dom.by_id("calibration-chart")
    assert int(chart.attrs["data-points"]) == 10
    spans = {n.attrs["data-level"]: n.attrs["class"] for n in chart.find("line", data_level="*")}
    rows = {
        r.attrs["data-level"]: r.text() for r in dom.by_id("calibration").find("tr", data_level="*")
    }
    for c in calibration:
        assert spans[c["level"]] == f"cal-span {'ok' if c['calibrated'] else 'off'}"
        assert rows[c["level"]].split()[-1] == ("yes" if c["calibrated"] else "no")
    ok = sum(c["calibrated"] for c in calibration)
    assert f"{ok} of 10" in dom.by_id("accuracy").text()
    stage_rows = [r.attrs["data-key"] for r in dom.by_id("run-stages").find("tr", data_key="*")]
    assert stage_rows == list(stages)  # in pipeline order
    assert "30.5 s" in dom.by_id("run-stages").text()
    classes = dom.by_id("run-classes").find("tr", data_key="*")
    assert [r.attrs["data-key"] for r in classes] == ["lumpy", "smooth"]  # most series first
    assert dom.by_id("run-failures").find("tr", data_key="AutoETS")
    assert "feedc0de" in dom.by_id("status-stats").text()


def test_item_without_forecast_or_policy_shows_a_message(browser, api, tmp_path):
    items = httpx.get(f"{api}/api/v1/items?limit=500").json()["items"]
    missing = next(
        (
            i["item_code"]
            for i in items
            if httpx.get(f"{api}/api/v1/forecasts", params={"item": i["item_code"]}).status_code
            == 404
        ),
        None,
    )
    if missing is None:
        pytest.skip("every demo item has a forecast")

    dom = render(browser, f"{api}/#/item/{quote(missing)}", "item-no-forecast.png", tmp_path / "p")
    no_error(dom)
    fan = dom.by_id("forecast-chart")
    assert fan.attrs.get("data-rendered") == "false"
    assert "no series" in fan.text()
    assert not fan.find("canvas")


def test_api_key_required_shows_the_key_field(browser, demo_gold, tmp_path):
    process, url = start_api(demo_gold, tmp_path / "api.log", keys="s3cret")
    try:
        dom = render(browser, f"{url}/", "api-key.png", tmp_path / "profile")
    finally:
        stop(process)
    body = dom.find("body")[0]
    assert "API key required" in body.attrs.get("data-error", "")
    assert "hidden" not in dom.by_id("key-panel").attrs
    assert dom.by_id("api-key").attrs.get("type") == "password"
