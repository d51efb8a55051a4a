"""The layers point one way: api -> jobs -> moderation -> mastodon/storage -> telemetry (docs/architecture.md).

Every import in service/modwatch, at module level or inside a function, is an edge between the packages it
joins; the graph has no cycle, and between the layers every edge points down.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import modwatch

PACKAGE = Path(modwatch.__file__).parent
# Lower number, lower layer. Entry points (cli, run, stream, ...) and the base modules (settings,
# connection, redis_keys: it imports nothing, tests/core/test_redis_keys.py) sit outside the ranking:
# the cycle check covers them.
LAYERS = {"api": 4, "jobs": 3, "moderation": 2, "mastodon": 1, "storage": 1, "telemetry": 0}


def unit(module: str) -> str:
    """The package (or top-level module) of modwatch a dotted module name belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "modwatch"


def imported_modules(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        if node.module == "modwatch":  # `from modwatch import settings` names a module; `__version__` does not
            return [f"modwatch.{alias.name}" for alias in node.names if (PACKAGE / alias.name).exists()
                    or (PACKAGE / f"{alias.name}.py").exists()]
        return [node.module]
    return []


def package_edges() -> dict[tuple[str, str], list[str]]:
    """(from package, to package) -> the modules with such an import."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(("modwatch", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            for name in imported_modules(node):
                if name.startswith("modwatch.") and unit(name) != unit(module):
                    edges[(unit(module), unit(name))].append(module)
    return edges


def test_the_packages_import_each_other_without_a_cycle():
    edges = package_edges()
    assert len(edges) > 20  # the walk saw the code base
    graph: dict[str, set[str]] = defaultdict(set)
    for source, target in edges:
        graph[source].add(target)
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            cycle = path[path.index(node):] + [node]
            culprits = {f"{a}->{b}": edges[(a, b)] for a, b in zip(cycle, cycle[1:])}
            raise AssertionError(f"import cycle {' -> '.join(cycle)}: {culprits}")
        if node not in done:
            for target in sorted(graph[node]):
                visit(target, [*path, node])
            done.add(node)

    for node in sorted(graph):
        visit(node, [])


def test_between_the_layers_every_import_points_down():
    upward = {f"{source} -> {target}": modules for (source, target), modules in package_edges().items()
              if source in LAYERS and target in LAYERS and LAYERS[source] <= LAYERS[target]}
    assert upward == {}


def test_the_monitoring_job_module_does_not_load_the_moderation_stack():
    # A worker imports a job's module before forking: record_queue_stats must not bring SQLAlchemy,
    # Mastodon.py and the rules engine into a monitoring worker.
    probe = ("import sys; import modwatch.jobs.monitoring; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'mastodon') "
             "or m.startswith('modwatch.moderation')))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
