"""CivicFlow's one custom GX expectation: rows that fail, counted per field by the query itself.

Importing this module imports great_expectations (seconds): only the suite builders do, when a check runs.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from great_expectations.expectations import UnexpectedRowsExpectation

# SQLAlchemy's text() reads ":name" as a bind parameter; a regex's "(?:and|...)" must not become one.
_BIND_LIKE = re.compile(r"(?<![:\w\\]):(?=\w)")


def escape_binds(sql: str) -> str:
    return _BIND_LIKE.sub(r"\\:", sql)


class ExpectNoFailuresByField(UnexpectedRowsExpectation):
    """The query returns one row per failing field: `field` (its name) and `failing` (how many values fail),
    and `rule` when one query answers for several rules.

    Compared with UnexpectedRowsExpectation it runs its query once, not twice (rows, then count), which matters
    on a million rows, and its result says how many values failed in each field without holding one of them:
    the query selects names and counts only.
    """

    metric_dependencies: ClassVar[tuple[str, ...]] = ("unexpected_rows_query.table",)

    def _validate(self, metrics: dict, runtime_configuration: dict | None = None,
                  execution_engine: Any = None) -> dict:
        by_field: dict[str, int] = {}
        by_rule: dict[str, dict[str, int]] = {}
        for row in metrics["unexpected_rows_query.table"]:
            name, failing = str(row["field"]), int(row["failing"])
            by_field[name] = by_field.get(name, 0) + failing
            if "rule" in row:
                fields = by_rule.setdefault(str(row["rule"]), {})
                fields[name] = fields.get(name, 0) + failing
        details: dict[str, Any] = {"failing_by_field": by_field}
        if by_rule:
            details["failing_by_rule"] = by_rule
        return {"success": not by_field, "result": {"observed_value": sum(by_field.values()), "details": details}}
