"""Screenshots of what a user sees of one `fsmc run` in the Prefect and MLflow UIs (docs/ui/*.png).

Starts a real Prefect server and a real MLflow server on free 127.0.0.1 ports in a scratch project,
runs `fsmc run` on the embedded default through both, and renders the pages with headless Chromium
(`make browser` installs it). The PNGs are what issue 13 asked to see; rerun after a UI change:

    .venv/bin/python docs/ui/capture.py [--out docs/ui] [--steps 120]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
BIN = Path(sys.executable).parent

# The tests' helpers for servers on free loopback ports (imported after the sys.path line above).
from tests.conftest import free_port, wait_for_url  # noqa: E402


def post_json(url: str, body: dict) -> object:
    """POST ``body`` as JSON; the decoded answer."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def screenshot(url: str, png: Path, profile: Path, size: str = "1600,1000", wait_ms: int = 15000) -> None:
    """Render ``url`` in headless Chromium after ``wait_ms`` of (virtual) time and save it as ``png``."""
    subprocess.run(
        ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={profile}",
         f"--window-size={size}", f"--virtual-time-budget={wait_ms}", f"--screenshot={png}", url],
        check=True, capture_output=True, timeout=180,
    )
    print(f"{png.name}: {url}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "ui")
    parser.add_argument("--steps", type=int, default=120, help="recover.steps of the run (the default's 400 only takes longer)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="fsmc-ui-"))
    shutil.copy(REPO / "params.yaml", scratch / "params.yaml")
    prefect_port, mlflow_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "PREFECT_API_URL", "PREFECT_UI_API_URL")}
    env["PREFECT_HOME"] = str(scratch / ".prefect")
    servers = [
        subprocess.Popen([str(BIN / "fsmc"), "server", "start", "--port", str(prefect_port)], cwd=scratch, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([str(BIN / "fsmc"), "ui", "--port", str(mlflow_port)], cwd=scratch, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]
    prefect, mlflow = f"http://127.0.0.1:{prefect_port}", f"http://127.0.0.1:{mlflow_port}"
    try:
        wait_for_url(f"{prefect}/api/health")
        wait_for_url(f"{mlflow}/health")
        run_env = {**env, "PREFECT_API_URL": f"{prefect}/api", "MLFLOW_TRACKING_URI": mlflow}
        result = subprocess.run([str(BIN / "fsmc"), "run", "--json", "--set", f"recover.steps={args.steps}"], cwd=scratch,
                                env=run_env, capture_output=True, text=True, timeout=1800)
        if result.returncode:
            raise SystemExit(result.stderr[-3000:])
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        (flow_run,) = [r for r in post_json(f"{prefect}/api/flow_runs/filter", {"limit": 5}) if r["state_type"] == "COMPLETED"][:1]
        artifacts = {a["key"]: a for a in post_json(f"{prefect}/api/artifacts/filter", {}) if a["flow_run_id"] == flow_run["id"]}
        run = json.loads(wait_for_url(f"{mlflow}/api/2.0/mlflow/runs/get?run_id={summary['mlflow_run_id']}"))["run"]
        experiment = run["info"]["experiment_id"]
        model = summary["registered_model"]
        profile = scratch / "chromium"
        pages = {
            "prefect-flow-run.png": f"{prefect}/runs/flow-run/{flow_run['id']}",
            "prefect-artifact-table.png": f"{prefect}/artifacts/artifact/{artifacts['per-class-accuracy']['id']}",
            "prefect-artifact-link.png": f"{prefect}/artifacts/artifact/{artifacts['mlflow-run']['id']}",
            "mlflow-run.png": f"{mlflow}/#/experiments/{experiment}/runs/{summary['mlflow_run_id']}",
            "mlflow-run-metrics.png": f"{mlflow}/#/experiments/{experiment}/runs/{summary['mlflow_run_id']}/model-metrics",
            "mlflow-model-version.png": f"{mlflow}/#/models/{model['name']}/versions/{model['version']}",
        }
        for name, url in pages.items():
            screenshot(url, args.out / name, profile)
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
        for server in servers:
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
