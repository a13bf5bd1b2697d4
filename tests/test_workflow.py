"""The GitHub Actions workflow that tests and publishes the book cannot run here, so it is checked offline:
against GitHub's workflow schema (shipped inside check-jsonschema) and against the README's test command."""

from __future__ import annotations

import re
import subprocess
import sys

import yaml

from clorg.core.paths import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"


def test_the_workflow_fits_githubs_schema():
    done = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                           str(WORKFLOW)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok -- validation done" in done.stdout


def test_the_schema_check_can_fail(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("name: x\non: push\njobs:\n  test:\n    steps: [{run: make test}]\n")  # no runs-on
    done = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                           str(broken)], capture_output=True, text=True)
    assert done.returncode != 0


def test_the_workflow_runs_the_readmes_test_command_and_publishes_the_site():
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"^(make test)\b", readme, flags=re.M).group(1)
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    runs = [step.get("run", "") for step in jobs["test"]["steps"]]
    assert any(r.startswith(command) for r in runs)
    uploads = [s for s in jobs["test"]["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact")]
    assert uploads and uploads[0]["with"]["path"] == "_build/html"
    assert jobs["publish"]["steps"][0]["uses"].startswith("actions/deploy-pages")


def test_the_citation_file_fits_its_schema_and_cites_the_paper():
    path = ROOT / "CITATION.cff"
    done = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.citation-file-format",
                           str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    cff = yaml.safe_load(path.read_text())
    (paper,) = cff["references"]
    assert paper["title"] == "How does Contrastive Learning Organize Images?" and paper["year"] == 2024
    assert cff["license"] == "MIT" and (ROOT / "LICENSE").read_text().startswith("MIT License")
