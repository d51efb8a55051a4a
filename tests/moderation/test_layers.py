"""Moderation knows nothing of RQ: it returns follow-ups, and only jobs/ enqueues (COMMON layering rule)."""

from __future__ import annotations

import ast
from pathlib import Path

import modwatch.moderation

MODERATION = Path(modwatch.moderation.__file__).parent


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_moderation_imports_neither_jobs_nor_rq():
    files = sorted(MODERATION.rglob("*.py"))
    assert len(files) > 5
    offenders = {
        f"{path.name}: {name}"
        for path in files
        for name in imported_modules(path)
        if name == "rq" or name.startswith(("rq.", "rq_scheduler", "modwatch.jobs", "modwatch.api"))
    }
    assert offenders == set()
