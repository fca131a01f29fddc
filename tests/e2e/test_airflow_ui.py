"""Airflow's web UI in a real (headless Chromium) browser: log in, open the daily DAG, read
the latest run's task states from the page, save a screenshot.

The run shown is a real mtf_daily run on tiny data, executed by Airflow's scheduler: the
end-to-end day of the session fixtures `e2e_env` / `e2e_day1` (conftest.py, also checked by
tests/e2e/test_e2e.py, `mtf demo` on the scheduler), so the day runs once per test session.
Only the API server (UI) is started here: the run is already in the metadata DB, with its
task logs on disk.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.spark]
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
DAG_ID = "mtf_daily"


@pytest.fixture(scope="module")
def airflow_home(request, tmp_root) -> Path:
    """An Airflow home whose metadata DB holds a finished mtf_daily run."""
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("chromium / chromedriver not installed (make browser)")
    env = request.getfixturevalue("e2e_env")
    request.getfixturevalue("e2e_day1")  # the end-to-end day (conftest.py) is the run shown
    return Path(env["MTF_AIRFLOW_HOME"])


def _durations(home: Path, run_id: str) -> tuple[float, dict[str, float]]:
    """(run seconds, {task id: seconds}) from the metadata DB's start and end dates."""
    secs = "(julianday(end_date) - julianday(start_date)) * 86400.0"
    with sqlite3.connect(home / "airflow.db") as db:
        (run,) = db.execute(f"SELECT {secs} FROM dag_run WHERE dag_id = ? AND run_id = ?",
                            (DAG_ID, run_id)).fetchone()
        tasks = dict(db.execute(f"SELECT task_id, {secs} FROM task_instance WHERE dag_id = ? "
                                f"AND run_id = ? AND start_date IS NOT NULL",
                                (DAG_ID, run_id)).fetchall())
    return run, tasks


def _latest_run(home: Path) -> tuple[str, dict[str, str]]:
    """(run id, {task id: state}) of the newest mtf_daily run, straight from the metadata DB."""
    with sqlite3.connect(home / "airflow.db") as db:
        (run_id,) = db.execute("SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC "
                               "LIMIT 1", (DAG_ID,)).fetchone()
        states = dict(db.execute("SELECT task_id, state FROM task_instance WHERE dag_id = ? "
                                 "AND run_id = ?", (DAG_ID, run_id)).fetchall())
    return run_id, states


@pytest.fixture(scope="module")
def ui(airflow_home, tmp_root):
    """The API server (UI) on a free port over that home; yields (base URL, password)."""
    from mtf.airflow_ui import admin_password, free_port, stop_group, ui_env, wait_healthy

    port = free_port()
    log = (tmp_root / "airflow-ui.log").open("w")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "airflow"), "api-server",
                             "--port", str(port)], env=ui_env(port, airflow_home), stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, timeout=180, proc=proc)
        yield base, admin_password(airflow_home)
    finally:
        stop_group(proc)
        log.close()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1600,1000"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))
    driver.implicitly_wait(30)
    yield driver
    driver.quit()


def test_login_open_daily_dag_and_read_task_states(ui, browser, airflow_home, tmp_root):
    from conftest import E2E_DAY1
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    base, password = ui
    run_id, db_states = _latest_run(airflow_home)
    assert run_id == f"demo__{E2E_DAY1}"  # the run id names the data day
    # real durations: the run and each task took seconds to minutes, not the days since
    # the logical date
    run_s, task_s = _durations(airflow_home, run_id)
    assert 10 < run_s < 3600, run_s
    assert set(task_s) == set(db_states)  # every task ran (a refusing gate too)
    assert all(0 <= s < 1800 for s in task_s.values()), task_s
    assert task_s["train"] > 1.0
    # the task logs persist on disk, where the UI reads them
    logs = airflow_home / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}"
    train_log = (logs / "task_id=train" / "attempt=1.log").read_text()
    assert f"train {E2E_DAY1}: step" in train_log
    # every task succeeded, except a gate that rejected its candidate: that ends `skipped`
    assert db_states and {t: s for t, s in db_states.items() if s != "success"} in (
        {}, {"gate": "skipped"}), db_states
    wait = WebDriverWait(browser, 60)

    browser.get(f"{base}/")
    wait.until(lambda d: "/auth/login" in d.current_url)  # not logged in: the login page
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys(password)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda d: "/auth/login" not in d.current_url)

    browser.get(f"{base}/dags/{DAG_ID}")
    header = (By.CSS_SELECTOR, "[data-testid=header-card]")
    wait.until(EC.text_to_be_present_in_element(header, "mtf-rl"))  # owner and tag loaded
    assert DAG_ID in browser.find_element(*header).text
    # the grid shows the task groups (ingest, learn, release, observe) of the run
    grid = (By.CSS_SELECTOR, "[data-testid=main-content]")
    for group in ("ingest", "learn", "release", "observe"):
        wait.until(EC.text_to_be_present_in_element(grid, group))
    wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, "[aria-label='Dag Docs']"))).click()
    # doc_md rendered as HTML in the docs dialog
    wait.until(lambda d: any(
        "retrain, evaluate, gate and publish" in e.text
        for e in d.find_elements(By.CSS_SELECTOR, "[role=dialog] h3")))
    browser.get(f"{base}/dags/{DAG_ID}")

    # the latest run, opened from the DAG page
    link = wait.until(EC.element_to_be_clickable(
        (By.CSS_SELECTOR, f"a[href^='/dags/{DAG_ID}/runs/{run_id}']")))
    link.click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "table tbody tr")))
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "table tbody tr"))
               >= len(db_states))
    seen: dict[str, str] = {}

    def read_states(d) -> bool:
        """The run's task states as the table shows them (the grid re-renders as it polls,
        so a read that meets a replaced row is simply retried)."""
        seen.clear()
        for row in d.find_elements(By.CSS_SELECTOR, "table tbody tr"):
            task = row.find_element(By.CSS_SELECTOR,
                                    "[data-testid=table-cell-task_display_name]")
            state = row.find_element(By.CSS_SELECTOR, "[data-testid=table-cell-state]")
            seen[task.text.strip()] = state.text.strip().lower().replace(" ", "_")
        return seen == db_states

    try:
        WebDriverWait(browser, 60, ignored_exceptions=(StaleElementReferenceException,)
                      ).until(read_states)
    except TimeoutException:
        pass
    assert seen == db_states

    # the train task's log, in the UI
    browser.get(f"{base}/dags/{DAG_ID}/runs/{run_id}/tasks/train")
    wait.until(lambda d: f"train {E2E_DAY1}: step" in d.page_source)
    log_shot = tmp_root / "airflow_ui" / f"{DAG_ID}_train_log.png"
    log_shot.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(log_shot))
    browser.get(f"{base}/dags/{DAG_ID}/runs/{run_id}")
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "table tbody tr")))

    shot = tmp_root / "airflow_ui" / f"{DAG_ID}_latest_run.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")
