"""Moderation flows behind the job functions.

Placeholder until the moderation pipeline lands: every flow reports that it did nothing.
"""

from __future__ import annotations

from typing import Any


def _not_yet(what: str) -> dict[str, Any]:
    return {"outcome": "skipped", "reason": f"{what}: moderation pipeline not installed"}


def handle_new_status(status: dict[str, Any]) -> dict[str, Any]:
    return _not_yet("status")


def handle_new_report(report: dict[str, Any]) -> dict[str, Any]:
    return _not_yet("report")


def handle_new_account(admin_account: dict[str, Any]) -> dict[str, Any]:
    return _not_yet("account")


def poll_accounts(origin: str) -> dict[str, Any]:
    return _not_yet(f"poll {origin}")


def analyze_and_maybe_report(account_id: str, source: str) -> dict[str, Any]:
    return _not_yet("analysis")
