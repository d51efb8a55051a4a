"""Mastodon's rate-limit families: which limits a request counts against, and which one its headers name.

Mastodon keeps several fixed windows at once, aligned on the epoch (a window of `period` seconds
ends when `now % period == 0`):

- `global`: 300 requests per 5 minutes per token, every API request
  (config/initializers/rack_attack.rb, `throttle_per_token_api`);
- `user`: 1,500 per 5 minutes per user, shared by all of that user's tokens and their web UI
  (`throttle_authenticated_api`);
- `paging`: 300 per 15 minutes per user for any request with `page`, `min_id`, `max_id` or
  `since_id`, shared with the moderator's own web UI (`throttle_authenticated_paging`);
- `reports`: 400 reports per account per day, windows ending at 00:00 UTC (app/lib/rate_limiter.rb,
  counted by app/models/report.rb);
- `unauthenticated`: 300 per 5 minutes per address for requests without a valid token
  (`throttle_unauthenticated_api`).

An answer carries the headers of one family only: the one with the fewest requests left
(app/controllers/concerns/rate_limit_headers.rb), or for `POST /api/v1/reports` the report
family unless another shows fewer left (`override_rate_limit_headers :create, family: :reports`);
a 429 from Rack::Attack names the throttle that refused. The headers do not say which family
they are: `attribute` works it out from the families the request counts against and the reset,
which lies on the grid of its family's period and at most one period ahead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Mapping

PAGING_PARAMS = ("page", "min_id", "max_id", "since_id")
REPORTS_ENDPOINT = ("POST", "/api/v1/reports")
# The server's clock and ours: the answer's Date has whole seconds.
CLOCK_SLACK_SECONDS = 2


@dataclass(frozen=True)
class Family:
    name: str
    limit: int
    period: int  # seconds; windows end on multiples of it
    per: str  # what Mastodon counts it per


GLOBAL = Family("global", 300, 300, "token")
USER = Family("user", 1_500, 300, "user")
PAGING = Family("paging", 300, 900, "user")
REPORTS = Family("reports", 400, 86_400, "account")
UNAUTHENTICATED = Family("unauthenticated", 300, 300, "address")
FAMILIES: dict[str, Family] = {f.name: f for f in (GLOBAL, USER, PAGING, REPORTS, UNAUTHENTICATED)}


def is_paging(params: Mapping[str, object]) -> bool:
    """`paging_request?`: any of the paging parameters present and not blank."""
    return any(params.get(name) not in (None, "", []) for name in PAGING_PARAMS)


def counted_by(method: str, endpoint: str, params: Mapping[str, object], authenticated: bool = True) -> tuple[str, ...]:
    """The families one request counts against, by name."""
    if not authenticated:
        return (UNAUTHENTICATED.name,)
    names = [GLOBAL.name, USER.name]
    if is_paging(params):
        names.append(PAGING.name)
    if (method.upper(), endpoint.rstrip("/")) == REPORTS_ENDPOINT:
        names.append(REPORTS.name)
    return tuple(names)


def attribute(counted: tuple[str, ...], limit: int | None, reset_at: datetime, now: datetime) -> tuple[str, ...]:
    """The families an answer's headers may describe.

    A family fits when the reset lies on its grid (whole seconds: the fraction is the request's)
    and no more than one period ahead. Several may fit (a 15-minute boundary is also a 5-minute
    one): the header's limit breaks the tie, and what still ties is returned whole, so the caller
    applies the answer to each, which can only make it more careful.
    """
    ahead = reset_at.timestamp() - now.timestamp()
    whole = int(reset_at.timestamp())
    fitting = [name for name in counted
               if whole % FAMILIES[name].period == 0 and 0 < ahead <= FAMILIES[name].period + CLOCK_SLACK_SECONDS]
    by_limit = [name for name in fitting if FAMILIES[name].limit == limit]
    return tuple(by_limit or fitting)
