"""The MLflow UI as a user meets it: the suite's summary links open each experiment's runs table.

MLflow 3's UI keeps a workflow type in the browser (default GenAI: traces, "Detect issues"), so a
plain experiment link lands on the GenAI overview. The suite tags its experiments as model
training and prints per experiment a link with ``?workflowType=machine_learning``; a real
``mlflow server`` and Debian's Chromium (driven by Playwright) show what that link opens.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from experiments.tracking.store import DEFAULT_UI_URL, EXPERIMENT_KIND, EXPERIMENT_KIND_TAG
from tests.external_tools import find, requires
from tests.mlflow_processes import run_cli, running_mlflow_server

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


@pytest.fixture(scope="module")
def suite_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A store holding one ``simple_ann`` run (no dataset needed); its URI and the suite's stdout."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('ui-store') / 'mlflow.db'}"
    status, out, err = run_cli(["run", "simple_ann", "--tracking-uri", uri, "--no-progress"])
    assert status == 0, out + err
    return uri, out


def test_experiments_are_tagged_as_model_training(suite_store) -> None:
    uri, _ = suite_store
    (experiment,) = [e for e in MlflowClient(uri).search_experiments() if e.name.startswith("anncore-")]
    assert experiment.tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND == "custom_model_development"


def test_summary_prints_each_experiments_training_view_link(suite_store) -> None:
    uri, out = suite_store
    experiment = MlflowClient(uri).get_experiment_by_name("anncore-simple_ann")
    link = f"{DEFAULT_UI_URL}/#/experiments/{experiment.experiment_id}/runs?workflowType=machine_learning"
    assert re.search(rf"^\s+simple_ann\s+{re.escape(link)}$", out, re.M), out
    assert f"mlflow ui --backend-store-uri {uri}" in out


@requires("chromium")
def test_the_link_opens_the_runs_table_in_chromium(suite_store, tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs Playwright's Python package (dev extra)")
    uri, out = suite_store
    (link,) = re.findall(rf"{re.escape(DEFAULT_UI_URL)}(/#/experiments/\S+)", out)
    run_id = MlflowClient(uri).search_runs([MlflowClient(uri).get_experiment_by_name("anncore-simple_ann")
                                            .experiment_id])[0].info.run_id  # fmt: skip
    with running_mlflow_server(uri, tmp_path / "artifacts", tmp_path / "server.log") as url:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=find("chromium"), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})  # fresh profile: no stored view
                page.goto(url + link)
                # The "Model training" view: the runs table with its header and the suite's run in it.
                page.get_by_role("columnheader", name="Run Name").first.wait_for(timeout=60_000)
                page.get_by_role("link", name="simple_ann", exact=True).first.wait_for(timeout=30_000)
                page.screenshot(path=str(tmp_path / "runs.png"))
                body = page.inner_text("body")
                assert "1 matching run" in body and "Detect Issues" not in body
                assert "workflowType=machine_learning" in page.url
                # The run's page is one click away, as a user would go on.
                page.get_by_role("link", name="simple_ann", exact=True).first.click()
                page.wait_for_function(f"location.hash.includes('/runs/{run_id}')", timeout=30_000)  # in-app route
            finally:
                browser.close()
    assert (tmp_path / "runs.png").stat().st_size > 10_000  # left in the test's folder for a person to look at
