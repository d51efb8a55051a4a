"""The rules file: YAML read safely, validated by pydantic models, each error one line.

The models are `RulesDocument` (the top level) here, `RuleFields` (what every rule has, schema.py)
and one model per detector, declared next to the detector in detectors.py. An error names the file,
the rule (name and 1-based position) and the field, e.g.
`rules.yaml: rule 'crypto-scam' (#3): field 'weight': must be a number other than 0 (...)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import ValidationError, field_validator

from modwatch.moderation.detectors import DETECTORS
from modwatch.moderation.domains import DomainListError, read_domain_list
from modwatch.moderation.schema import AtLeast, Domains, PositiveNumber, Rule, RuleFields, RulesMapping, Strings, explained

FILE_VERSION = 1


class RulesError(ValueError):
    """The rules file cannot be used; the message says where and why."""


class RulesDocument(RulesMapping):
    version: Annotated[int, AtLeast(1)]
    report_threshold: PositiveNumber | None = None
    # Domains no link rule or wave counts (popular sites), listed and/or in files beside the rules file.
    allowed_domains: Domains = ()
    allowed_domains_files: Annotated[tuple[str, ...], Strings()] = ()
    # Each rule is validated on its own (`_rule`), so that its errors can name it.
    rules: Annotated[list[Any], explained("must be a list of rules")]

    @field_validator("version")
    @classmethod
    def _known_version(cls, version: int) -> int:
        if version != FILE_VERSION:
            raise ValueError(f"must be {FILE_VERSION}")
        return version


def _first_error(where: str, error: ValidationError, unknown: str) -> RulesError:
    """The first of pydantic's errors as one line: `<where>field '<name>': <what is wrong>`."""
    detail = error.errors(include_url=False)[0]
    loc = [part for part in detail["loc"] if isinstance(part, str)]
    if detail["type"] == "missing":
        message = "required"
    elif detail["type"] == "extra_forbidden":
        message = unknown
    elif detail["type"] == "value_error":  # our messages (schema.invalid), without pydantic's "Value error, "
        message = str(detail.get("ctx", {}).get("error", detail["msg"]))
    else:  # pydantic's own wording for anything our types do not explain
        message = detail["msg"]
    # Errors of the whole model (no location) name their field in the message.
    return RulesError(f"{where}field '{'.'.join(loc)}': {message}" if loc else f"{where}{message}")


def _rule(prefix: str, index: int, raw: Any) -> Rule:
    name = raw.get("name") if isinstance(raw, dict) else None
    label = f"rule '{name.strip()}' (#{index})" if isinstance(name, str) and name.strip() else f"rule #{index}"
    where = f"{prefix}{label}: "
    if not isinstance(raw, dict):
        raise RulesError(f"{where}must be a mapping")
    try:
        common = RuleFields.model_validate(raw)
    except ValidationError as exc:
        raise _first_error(where, exc, "unknown") from None
    detector = DETECTORS.get(common.detector)
    if detector is None:
        raise RulesError(f"{where}field 'detector': {common.detector!r} is not one of {', '.join(DETECTORS)}")
    try:
        checked = detector.model.model_validate(raw)
    except ValidationError as exc:
        raise _first_error(where, exc, f"unknown for detector '{common.detector}'") from None
    params = checked.model_dump(exclude={*RuleFields.model_fields, "fields"}, exclude_none=True)
    return Rule(
        name=common.name,
        detector=common.detector,
        weight=common.weight,
        category=common.category,
        description=common.description,
        fields=getattr(checked, "fields", ()),
        enabled=common.enabled,
        instance_rule_ids=common.instance_rule_ids,
        applies_to=common.applies_to.model_dump(exclude_none=True) if common.applies_to else {},
        params=params,
    )


class _UniqueKeyLoader(yaml.SafeLoader):
    """Safe YAML that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)



@dataclass(frozen=True)
class RulesFile:
    rules: list[Rule]
    report_threshold: float | None
    allowed_domains: frozenset[str] = frozenset()
    # Every domain-list file the rules read: a change to any of them reloads the rules.
    files: tuple[Path, ...] = ()


def parse_rules(source: bytes, filename: str, directory: Path | None = None) -> RulesFile:
    """The enabled and disabled rules of a rules file, its report threshold (or None) and allowed
    domains; domain-list files are read relative to `directory` (the rules file's)."""
    where = f"{filename}: "
    try:
        data = yaml.load(source, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise RulesError(f"{where}invalid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise RulesError(f"{where}must be a mapping with 'version' and 'rules'")
    try:
        top = RulesDocument.model_validate(data)
    except ValidationError as exc:
        raise _first_error(where, exc, "unknown top-level key") from None
    rules = [_rule(where, index, raw) for index, raw in enumerate(top.rules, start=1)]
    seen: dict[str, int] = {}
    for index, rule in enumerate(rules, start=1):
        if rule.name in seen:
            raise RulesError(f"{where}rule '{rule.name}' (#{index}): field 'name': duplicate of rule #{seen[rule.name]}")
        seen[rule.name] = index
    directory = directory or Path.cwd()
    files: list[Path] = []

    def read_lists(names: tuple[str, ...], where_: str) -> frozenset[str]:
        found: set[str] = set()
        for name in names:
            path = (directory / name).resolve()
            files.append(path)
            try:
                found |= read_domain_list(path)
            except DomainListError as exc:
                raise RulesError(f"{where_}{exc}") from None
        return frozenset(found)

    for index, rule in enumerate(rules):
        if rule.detector == "link_domain" and rule.params.get("domains_files"):
            listed = read_lists(rule.params["domains_files"], f"{where}rule '{rule.name}' (#{index + 1}): field 'domains_files': ")
            rule.params["domains"] = tuple(dict.fromkeys([*rule.params.get("domains", ()), *sorted(listed)]))
    allowed = frozenset(top.allowed_domains) | read_lists(top.allowed_domains_files, f"{where}field 'allowed_domains_files': ")
    return RulesFile(rules, top.report_threshold, allowed, tuple(files))


def read_rules(path: str | Path) -> tuple[bytes, RulesFile]:
    path = Path(path)
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise RulesError(f"{path.name}: cannot read {path}: {exc.strerror}") from None
    return source, parse_rules(source, path.name, path.parent)
