"""Jobs that may be triggered by hand through `POST /jobs/trigger/{task_name}`.

Nothing outside this table can be triggered: the name picks the function, and the body is
validated against the job's argument model before anything is enqueued.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field

from modwatch.jobs import monitoring, tasks


class NoArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AnalyzeAccountArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_id: str = Field(pattern=r"^[0-9]{1,20}$", description="Mastodon account id (a string of digits).")
    source: str = Field("manual", pattern=r"^[a-z_]{1,32}$")


@dataclass(frozen=True)
class Triggerable:
    function: Callable[..., Any]
    arguments: type[BaseModel]
    description: str


TRIGGERABLE: dict[str, Triggerable] = {
    "poll_admin_accounts": Triggerable(tasks.poll_admin_accounts, NoArguments, "Poll remote admin accounts now."),
    "poll_admin_accounts_local": Triggerable(
        tasks.poll_admin_accounts_local, NoArguments, "Poll local admin accounts now."
    ),
    "record_queue_stats": Triggerable(monitoring.record_queue_stats, NoArguments, "Collect queue statistics now."),
    "sync_report_outcomes": Triggerable(
        tasks.sync_report_outcomes, NoArguments, "Read moderators' verdicts on modwatch's reports now."
    ),
    "analyze_and_maybe_report": Triggerable(
        tasks.analyze_and_maybe_report, AnalyzeAccountArguments, "Analyse one account; report it if it scores."
    ),
}
