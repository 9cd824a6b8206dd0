"""The project as someone cloning it gets it: declared dependencies, CI and benchmarks that find
their tools where the guide says and change nothing on the machine."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("server", "importers", "exporters", "vocabularies")


def _imported_top_level_modules(folder: Path) -> set[str]:
    found: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found


def test_every_module_the_package_imports_is_a_declared_dependency() -> None:
    """`requests` was imported by the remote store but declared only for tests: an install
    without the test extra could not use a SPARQL server."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].lower().replace("_", "-") for d in project["dependencies"]}
    provided = packages_distributions()
    missing = []
    for module in set().union(*(_imported_top_level_modules(ROOT / p) for p in PACKAGES)):
        if module in PACKAGES or module in sys.stdlib_module_names or module == "__future__":
            continue
        distributions = {d.lower().replace("_", "-") for d in provided.get(module, [module])}
        if not distributions & declared:
            missing.append(f"{module} ({', '.join(sorted(distributions))})")
    assert not missing, f"imported but not in [project].dependencies: {missing}"


def test_ci_finds_the_shared_tools_beside_the_project_only() -> None:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "SHARED=${CIVICFED_SHARED:-../shared}" in script
    # No absolute path to where one machine keeps them.
    assert not re.search(r"(?<![\w.])/(work|home|root|opt)/", script), "an absolute path in .ci/run"


def test_make_bench_installs_nothing() -> None:
    """A benchmark must never change the machine: what is missing is named, with how to install it."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = makefile.split("\nbench:", 1)[1].split("\n\n", 1)[0]
    for command in re.split(r"\|\||&&|;|\n\t", recipe):
        if re.search(r"\b(apt-get|apt|pip|npm)\s+install\b", command):
            assert re.match(r"\s*@?(command -v \S+ >/dev/null \|\| )?echo\b", command) or "echo" in command, command


def test_the_virtuoso_benchmark_refuses_to_install_virtuoso(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """shared/tools/virtuoso/start.sh installs Virtuoso when it is missing: the benchmark does not
    call it then, and says how to install it."""
    from bench import backends

    tools = tmp_path / "tools" / "virtuoso"
    tools.mkdir(parents=True)
    ran = tmp_path / "ran"
    (tools / "start.sh").write_text(f"touch {ran}\n")
    monkeypatch.setattr(backends, "shared_tools", lambda: tmp_path / "tools")
    monkeypatch.setattr(backends.shutil, "which", lambda tool: None)
    with pytest.raises(RuntimeError, match="apt-get install virtuoso-opensource"):
        backends.Virtuoso(tmp_path / "work", tmp_path / "dump.nq", 1, 2)
    assert not ran.exists()
