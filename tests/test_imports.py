"""The import rules of STYLE.md that keep data flowing one way, checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "handlers", "jobs", "storage")
# Leaves: pure modules that import no other deskline module.
LEAVES = {
    "bot.domain.errors",
    "bot.settings",
    "bot.domain.clock",
    "bot.domain.schedule",
    "bot.domain.opening_text",
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name.split(".")[0] in PACKAGES}


def _modules() -> dict[str, set[str]]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(p for p in parts if p != "__init__")
            out[name] = _imports(path)
    return out


def test_leaves_import_no_internal_module() -> None:
    modules = _modules()
    for leaf in LEAVES:
        assert modules[leaf] == set(), leaf


def test_storage_never_reaches_up() -> None:
    for name, imports in _modules().items():
        if name.startswith("storage"):
            bad = {i for i in imports if i.split(".")[0] in ("jobs", "handlers")}
            assert not bad | ({"bot.runtime.outbox"} & imports), (name, bad)


def test_handlers_never_import_jobs_and_webhook_never_touches_storage() -> None:
    for name, imports in _modules().items():
        if name.startswith("handlers"):
            assert not {i for i in imports if i.startswith("jobs")}, name
        if name == "handlers.webhook":
            assert not {i for i in imports if i.startswith("storage")}, name


def test_only_composition_modules_import_app_and_worker() -> None:
    for name, imports in _modules().items():
        if "handlers" in {i.split(".")[0] for i in imports}:
            assert name.startswith("handlers") or name in {"bot.app", "bot.simulate"}, name
        if "jobs" in {i.split(".")[0] for i in imports}:
            assert name.startswith("jobs") or name == "bot.worker", name
        assert "bot.app" not in imports or name == "bot.__main__", name


def test_no_two_modules_import_each_other() -> None:
    # Not even lazily (an import inside a function): a cycle means neither module can be
    # understood, tested or loaded alone. A package and its own modules are exempt (the
    # package re-exports them; they import its names).
    paths = {
        ".".join(p for p in path.relative_to(ROOT).with_suffix("").parts if p != "__init__"): path
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from storage import keys` imports the module storage.keys.
                found.update(
                    f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in paths else node.module
                    for a in node.names
                )
        graph[name] = found & paths.keys()
    mutual = {
        (a, b)
        for a, imports in graph.items()
        for b in imports
        if a < b and a in graph[b] and not b.startswith(f"{a}.")
    }
    assert mutual == set()


def test_the_web_process_starts_without_the_pdf_renderer() -> None:
    # fpdf2 costs ~20 MB: loaded with the first transcript, not with the app (BENCHMARKS.md).
    import subprocess
    import sys

    code = "import sys, bot.app, bot.worker; print('fpdf' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
