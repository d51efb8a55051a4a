"""What every rule shares: the Rule the engine runs, the fields common to every rule, and the value
types detectors build their parameters from.

The rules file is validated by pydantic models: `RuleFields` here, and one subclass per detector
next to the detector itself (detectors.py). Each value type carries the one line a mistake gets
(`must be an integer >= 1`); rules.py adds the file, the rule and the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    GetCoreSchemaHandler,
    ConfigDict,
    Field,
    Strict,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)

TEXT_FIELDS = ("username", "display_name", "note", "fields", "status_text", "spoiler_text", "media_description")
# `mentions`: the hosts of mentioned accounts; `account`: the account's own domain.
LINK_FIELDS = ("note", "fields", "status_text", "mentions", "account")
CATEGORIES = ("spam", "legal", "violation", "other")
# What `applies_to` may limit: a rule then counts only for accounts within every limit given.
ACCOUNT_LIMITS = ("max_account_age_days", "max_followers", "max_statuses")


@dataclass(frozen=True)
class Rule:
    name: str
    detector: str
    weight: float
    category: str
    description: str = ""
    fields: tuple[str, ...] = ()
    enabled: bool = True
    params: dict[str, Any] = field(default_factory=dict)
    # Ids of the instance's own rules (GET /api/v1/instance/rules) a `violation` report names.
    instance_rule_ids: tuple[str, ...] = ()
    # Account limits (ACCOUNT_LIMITS) the rule is restricted to; empty: every account.
    applies_to: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "detector": self.detector,
            "weight": self.weight,
            "category": self.category,
            "enabled": self.enabled,
        }
        if self.fields:
            out["fields"] = list(self.fields)
        if self.instance_rule_ids:
            out["instance_rule_ids"] = list(self.instance_rule_ids)
        if self.applies_to:
            out["applies_to"] = dict(self.applies_to)
        out.update({key: list(value) if isinstance(value, tuple) else value for key, value in self.params.items()})
        return out


def invalid(message: str) -> ValueError:
    """An error whose message rules.py shows as written (pydantic reports it as a `value_error`)."""
    return ValueError(message)


def explained(message: str) -> WrapValidator:
    """Replace pydantic's own wording ("Input should be a valid integer") with `message`, which says
    what the value must be; validators placed after this one add their own messages."""

    def validate(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError:
            raise invalid(message) from None

    return WrapValidator(validate)


def _nonzero(value: float) -> float:
    if value == 0:
        raise ValueError("zero")
    return value


def _positive(value: float) -> float:
    if not value > 0:
        raise ValueError("not positive")
    return value


# Numbers keep their type (3 stays 3 in the rules listing); booleans are not numbers here.
Number = StrictInt | StrictFloat
Flag = Annotated[bool, Strict(), explained("must be true or false")]
Text = Annotated[str, Strict(), explained("must be a string")]
Name = Annotated[str, Strict(), StringConstraints(strip_whitespace=True, min_length=1), explained("must be a non-empty string")]
Weight = Annotated[Number, AfterValidator(_nonzero),
                   explained("must be a number other than 0 (negative: evidence against spam)")]
PositiveNumber = Annotated[Number, AfterValidator(_positive), explained("must be a number > 0")]


class _Shorthand:
    """Metadata standing for a parameterised type: `Annotated[int, AtLeast(1)]` (a form type checkers accept)."""

    def type(self) -> Any:
        raise NotImplementedError

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> Any:
        return handler.generate_schema(self.type())


@dataclass(frozen=True)
class AtLeast(_Shorthand):
    """An integer >= minimum."""

    minimum: int

    def type(self) -> Any:
        return Annotated[int, Strict(), Field(ge=self.minimum), explained(f"must be an integer >= {self.minimum}")]


@dataclass(frozen=True)
class OneOf(_Shorthand):
    """One of `allowed`."""

    allowed: tuple[str, ...]

    def type(self) -> Any:
        return Annotated[Text, AfterValidator(self._check)]

    def _check(self, value: str) -> str:
        if value not in self.allowed:
            raise invalid(f"{value!r} is not one of {', '.join(self.allowed)}")
        return value


@dataclass(frozen=True)
class Strings(_Shorthand):
    """A non-empty list of non-empty strings (of `allowed`, if given), stripped, each once, as a tuple."""

    allowed: tuple[str, ...] | None = None

    def type(self) -> Any:
        item = Annotated[str, Strict(), StringConstraints(strip_whitespace=True, min_length=1)]
        return Annotated[tuple[item, ...], Field(min_length=1), explained("must be a non-empty list of non-empty strings"),
                         AfterValidator(self._check)]

    def _check(self, items: tuple[str, ...]) -> tuple[str, ...]:
        for item in items:
            if self.allowed is not None and item not in self.allowed:
                raise invalid(f"{item!r} is not one of {', '.join(self.allowed)}")
        return tuple(dict.fromkeys(items))


def _domain_names(domains: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(domain.lower().removeprefix("www.") for domain in domains))


Domains = Annotated[tuple[str, ...], Strings(), AfterValidator(_domain_names)]


@dataclass(frozen=True)
class RuleIds(_Shorthand):
    """Ids of the instance's own rules: digits, written as numbers or strings."""

    def type(self) -> Any:
        return Annotated[tuple[StrictStr | StrictInt, ...], Field(min_length=1),
                         explained("must be a non-empty list of instance rule ids"), AfterValidator(self._check)]

    def _check(self, ids: tuple[str | int, ...]) -> tuple[str, ...]:
        text = tuple(str(item) for item in ids)
        if not all(item.isdigit() for item in text):
            raise invalid("must contain only rule ids (digits) from GET /api/v1/instance/rules")
        return text


class RulesMapping(BaseModel):
    """A mapping of the rules file: unknown keys are errors, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class AccountLimits(RulesMapping):
    max_account_age_days: PositiveNumber | None = None
    max_followers: Annotated[int, AtLeast(0)] | None = None
    max_statuses: Annotated[int, AtLeast(0)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _known_limits(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not data:
            raise invalid(f"must be a mapping with any of {', '.join(ACCOUNT_LIMITS)}")
        for key in data:
            if key not in ACCOUNT_LIMITS:
                raise invalid(f"{key!r} is not one of {', '.join(ACCOUNT_LIMITS)}")
        return data


class RuleFields(RulesMapping):
    """The fields every rule has, whatever its detector. Read first, with other keys ignored, to learn
    the detector; the detector's own model (a subclass) then reads the whole rule, unknown keys refused."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: Name
    description: Text = ""
    detector: Text
    weight: Weight
    category: Annotated[str, OneOf(CATEGORIES)]
    enabled: Flag = True
    instance_rule_ids: Annotated[tuple[str, ...], RuleIds()] = ()
    applies_to: AccountLimits | None = None

    @model_validator(mode="after")
    def _violation_names_instance_rules(self) -> RuleFields:
        if self.category == "violation" and not self.instance_rule_ids:
            raise invalid("field 'instance_rule_ids': required when category is 'violation' "
                          "(Mastodon files a violation report against the instance's own rules)")
        return self


class DetectorRule(RuleFields):
    """Base of each detector's model: the common fields plus the detector's parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def require_one_of(model: BaseModel, names: tuple[str, ...]) -> None:
    """For parameters of which at least one must be given (a detector's model validator calls it)."""
    if all(getattr(model, name) is None for name in names):
        raise invalid(f"field '{names[0]}': one of {' or '.join(map(repr, names))} is required")
