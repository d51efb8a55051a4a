"""Domain lists for rules: one domain per line, or Mastodon's domain-block CSV export.

Mastodon's export (Moderation > Federation > Export, `admin/export_domain_blocks`) is a CSV whose
header is `#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate`; only the
first column is read. Blank lines and `#` comments are skipped, `*.` prefixes and `www.` dropped,
names lower-cased. A domain covers its subdomains wherever a list is applied.
"""

from __future__ import annotations

from pathlib import Path


class DomainListError(ValueError):
    """The list cannot be read; the message names the file and line."""


def parse_domain_list(text: str, name: str) -> frozenset[str]:
    domains = set()
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        domain = line.split(",", 1)[0].strip().strip('"').lower().removeprefix("*.").removeprefix("www.").rstrip(".")
        if not domain or " " in domain or "/" in domain or "." not in domain:
            raise DomainListError(f"{name}: line {number}: {domain!r} is not a domain name")
        domains.add(domain)
    return frozenset(domains)


def read_domain_list(path: Path) -> frozenset[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DomainListError(f"{path.name}: cannot read {path}: {exc}") from None
    return parse_domain_list(text, path.name)


def covered(domain: str, listed: frozenset[str]) -> bool:
    """Whether `domain` or one of its parent domains is listed."""
    parts = domain.lower().split(".")
    return any(".".join(parts[index:]) in listed for index in range(len(parts) - 1))
