"""Expectation outcomes folded into one result per rule: passed, failing count, failing count per field."""

from __future__ import annotations

from dataclasses import dataclass, field

from civicflow_assets.checks.config import PII_RULES, CheckSettings, Dataset
from civicflow_assets.checks.rules import CHECK_NAMES
from civicflow_assets.checks.validation import ExpectationOutcome


@dataclass(frozen=True)
class RuleResult:
    dataset: str
    rule: str
    title: str
    blocking: bool
    passed: bool
    failing_count: int
    failing_by_field: dict[str, int] = field(default_factory=dict)
    waived_reason: str | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def check_name(self) -> str:
        return CHECK_NAMES[self.rule]

    @property
    def rule_ids(self) -> list[str]:
        # PII5 is the rule that a PII violation blocks publication: every PII check enforces it too.
        return [self.rule, "PII5"] if self.rule in PII_RULES else [self.rule]

    def describe(self) -> str:
        """What a failure says (PII5): which dataset, which fields, which rule, how many values; never the values."""
        if self.waived_reason:
            return f"{self.dataset}: {self.rule} waived: {self.waived_reason}"
        if self.passed:
            return f"{self.dataset}: {self.rule} passed"
        fields = ", ".join(f"{name} ({count})" for name, count in sorted(self.failing_by_field.items()))
        errors = f"; could not evaluate: {'; '.join(self.errors)}" if self.errors else ""
        return f"{self.dataset}: {self.rule} failed for {self.failing_count} value(s) in {fields or '-'}{errors}"


def summarize(dataset: Dataset, settings: CheckSettings, rules: list[str],
              outcomes: list[ExpectationOutcome]) -> list[RuleResult]:
    results = []
    for rule in rules:
        spec = settings.rules[rule]
        if rule in dataset.waivers:
            results.append(RuleResult(dataset.name, rule, spec.title, spec.blocking, True, 0,
                                      waived_reason=dataset.waivers[rule]))
            continue
        mine = [o for o in outcomes if o.rule == rule]
        by_field: dict[str, int] = {}
        for outcome in mine:
            if outcome.success:
                continue
            for name, count in (outcome.failing_fields or {outcome.field: outcome.failing}).items():
                by_field[name] = by_field.get(name, 0) + count
        errors = [f"{o.field}: {o.error}" for o in mine if o.error]
        passed = all(o.success for o in mine)
        results.append(RuleResult(dataset.name, rule, spec.title, spec.blocking, passed, sum(by_field.values()),
                                  by_field, errors=errors))
    return results
