"""Rule ids mapped to GX expectations: which rules a dataset is checked against, and the expectations of each.

Every expectation carries `meta = {"rule": <id>, "field": <column>}`, so a result can be counted per rule and
per field. Two kinds, both reporting counts, never values:
  - GX's column expectations (not null, unique, between, not in set, pair A >= B): one scan of the table
    computes all of them together, and the validation runs with partial_unexpected_count 0;
  - ExpectNoFailuresByField (gx_expectations.py) for what needs SQL: the catalog (C4, F5), regular expressions
    over text (PII1, PII2: a cheap prefilter first, categorical columns by distinct value), geometry and flags.
    Its queries select field names and counts only.
great_expectations is imported inside the functions (it costs seconds to import), so this module stays cheap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from civicflow_assets.checks.config import CheckSettings, Dataset

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

# The Dagster check name of each rule: `<rule>_<what it proves>`.
CHECK_NAMES = {
    "C2": "c2_coded_fields_described",
    "C4": "c4_camel_case_names",
    "F5": "f5_timestamps_zoned",
    "U2": "u2_created_and_modified",
    "PII1": "pii1_no_personal_data",
    "PII2": "pii2_locations_generalized",
    "PII3": "pii3_small_cells_suppressed",
    "PII4": "pii4_sensitive_types_withheld",
    "Q1": "q1_required_fields_complete",
    "Q2": "q2_values_in_range",
}
PII1_KINDS = ("email", "card", "ssn", "phone", "name")
TEXT_TYPES = {"text", "character varying", "character"}
CAMEL_CASE_SQL = "^[A-Z][A-Za-z0-9]*$"


@dataclass(frozen=True)
class PublishedTable:
    """The published table as the warehouse has it: column name -> information_schema data type."""

    schema: str
    name: str
    columns: dict[str, str]

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    def text_columns(self) -> list[str]:
        return [c for c, t in self.columns.items() if t in TEXT_TYPES]


def applicable_rules(dataset: Dataset, settings: CheckSettings) -> list[str]:
    rules = ["C4", "F5", "U2", "PII1"]
    if dataset.id_fields or dataset.coded_fields:
        rules.insert(0, "C2")
    if dataset.free_text_fields or dataset.address_fields or dataset.geometry_field or dataset.longitude_field:
        rules.append("PII2")
    if dataset.count_fields:
        rules.append("PII3")
    if dataset.grain == "record" and dataset.request_type_field:
        rules.append("PII4")
    rules.append("Q1")
    if dataset.ranges or dataset.geometry_field or dataset.longitude_field:
        rules.append("Q2")
    return [r for r in rules if r in settings.rules]


def _meta(rule: str, field: str) -> dict[str, Any]:
    return {"rule": rule, "field": field}


def _quote(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _text_array(values: tuple[str, ...] | list[str]) -> str:
    return "array[" + ", ".join(_text(v) for v in values) + "]::text[]"


def _by_field(rule: str | tuple[str, ...], sql: str, description: str) -> Expectation:
    """An ExpectNoFailuresByField whose SQL names the checked table __CHECKED_TABLE__.

    With several rules, the query also returns a `rule` column: one scan answers for all of them.
    """
    from civicflow_assets.checks.gx_expectations import ExpectNoFailuresByField, escape_binds

    # GX leaves the batch subquery without an alias when a query has a JOIN: write "from a, lateral b" instead.
    if re.search(r"\bjoin\b", re.sub(r"'[^']*'|\"[^\"]*\"", "", sql), re.IGNORECASE):
        raise ValueError(f"{rule}: a by-field query must not use JOIN")
    # GX fills {batch} with str.format, so every other brace (regex quantifiers) is doubled.
    query = escape_binds(sql).replace("{", "{{").replace("}", "}}").replace("__CHECKED_TABLE__", "{batch}")
    rules = (rule,) if isinstance(rule, str) else rule
    meta = {**_meta(rules[0], "*"), "rules": list(rules)} if len(rules) > 1 else _meta(rules[0], "*")
    return ExpectNoFailuresByField(unexpected_rows_query=query, meta=meta, description=description)


def _counts_where(conditions: list[tuple[str, str]]) -> str:
    """(field, failing) for each field whose condition some rows meet: one scan for all of them."""
    counts = ", ".join(f"count(*) filter (where {condition}) as c{i}" for i, (_, condition) in enumerate(conditions))
    fields = ", ".join(f"({_text(field)}, c{i})" for i, (field, _) in enumerate(conditions))
    return (f"select field, failing from (select {counts} from __CHECKED_TABLE__) as counts"
            f", lateral (values {fields}) as v (field, failing) where failing > 0")


def _catalog(table: PublishedTable, condition: str) -> str:
    # GX insists on {batch} in the query; the catalog needs the table's name. The unused CTE satisfies GX:
    # PostgreSQL never evaluates a CTE that nothing reads.
    return ("with checked as (select * from __CHECKED_TABLE__)"
            " select attname::text as field, 1 as failing from pg_attribute"
            f" where attrelid = {_text(table.qualified)}::regclass and attnum > 0 and not attisdropped"
            f" and ({condition})")


def _matches_any(value_sql: str, patterns: list[str]) -> str:
    return "(" + " or ".join(f"{value_sql} ~* {_text(p)}" for p in patterns) + ")"


def _person_row_condition(dataset: Dataset, settings: CheckSettings) -> Any:
    """GX row condition for the person-related records (any type that is not a public asset)."""
    from great_expectations.expectations.row_conditions import Column

    if not dataset.request_type_field or not settings.public_asset_request_types:
        return None
    request_type = Column(dataset.request_type_field)
    return request_type.is_null() | request_type.is_not_in(list(settings.public_asset_request_types))


def _person_sql(dataset: Dataset, settings: CheckSettings) -> str:
    if not dataset.request_type_field or not settings.public_asset_request_types:
        return "true"
    column = _quote(dataset.request_type_field)
    return f"not coalesce({column} = any({_text_array(settings.public_asset_request_types)}), false)"


def _c2(dataset: Dataset, table: PublishedTable, settings: CheckSettings) -> list[Expectation]:
    import great_expectations.expectations as gxe

    expectations: list[Expectation] = []
    for field in dataset.id_fields:
        # A unique index on the field proves it from the catalog; without one, count by a hash aggregate (GX's
        # own uniqueness metric sorts the table: 3 s per million rows, not 1.5).
        indexed = (f"exists (select from pg_index where indrelid = {_text(table.qualified)}::regclass"
                   f" and indisunique and indpred is null and indnkeyatts = 1 and indkey[0] = (select attnum"
                   f" from pg_attribute where attrelid = {_text(table.qualified)}::regclass"
                   f" and attname = {_text(field)}))")
        duplicates = (f"select {_text(field)} as field, sum(n) as failing from (select count(*) as n"
                      f" from __CHECKED_TABLE__ where not {indexed} and {_quote(field)} is not null"
                      f" group by {_quote(field)} having count(*) > 1) as duplicated having sum(n) > 0")
        expectations += [
            gxe.ExpectColumnValuesToNotBeNull(column=field, meta=_meta("C2", field)),
            _by_field("C2", duplicates, f"C2: {field} identifies one record."),
        ]
    pairs = []
    for code, descriptor in dataset.coded_fields.items():
        expectations += [
            gxe.ExpectColumnToExist(column=code, meta=_meta("C2", code)),
            gxe.ExpectColumnToExist(column=descriptor, meta=_meta("C2", descriptor)),
        ]
        if code in table.columns and descriptor in table.columns:
            pairs.append((descriptor, f"{_quote(code)} is not null and {_quote(descriptor)} is null"))
    if pairs:
        expectations.append(_by_field("C2", _counts_where(pairs), "C2: every code is published with its descriptor"
                                      f" ({', '.join(f'{c} -> {d}' for c, d in dataset.coded_fields.items())})."))
    return expectations


def _c4(dataset: Dataset, table: PublishedTable, settings: CheckSettings) -> list[Expectation]:
    return [_by_field("C4", _catalog(table, f"attname !~ {_text(CAMEL_CASE_SQL)}"),
                      "C4: field names are CamelCase, letters and digits only, starting with a capital letter.")]


def _f5(dataset: Dataset, table: PublishedTable, settings: CheckSettings) -> list[Expectation]:
    import great_expectations.expectations as gxe

    declared = _text_array(dataset.timestamp_fields) if dataset.timestamp_fields else "array[]::text[]"
    unzoned = (f"atttypid in ('timestamp'::regtype, 'time'::regtype)"
               f" or (attname = any({declared}) and atttypid <> 'timestamptz'::regtype)")
    return [
        _by_field("F5", _catalog(table, unzoned),
                  "F5: every timestamp carries its time zone (timestamptz), the declared timestamp fields too."),
        *[gxe.ExpectColumnToExist(column=f, meta=_meta("F5", f)) for f in dataset.timestamp_fields],
    ]


def _u2(dataset: Dataset, table: PublishedTable, settings: CheckSettings) -> list[Expectation]:
    import great_expectations.expectations as gxe

    created = dataset.created_field or "CreatedDate"
    modified = dataset.modified_field or "ModifiedDate"
    expectations: list[Expectation] = [
        gxe.ExpectColumnToExist(column=created, meta=_meta("U2", created)),
        gxe.ExpectColumnToExist(column=modified, meta=_meta("U2", modified)),
    ]
    if created in table.columns and modified in table.columns:
        expectations += [
            gxe.ExpectColumnValuesToNotBeNull(column=created, meta=_meta("U2", created)),
            gxe.ExpectColumnValuesToNotBeNull(column=modified, meta=_meta("U2", modified)),
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A=modified, column_B=created, or_equal=True, ignore_row_if="either_value_is_missing",
                meta=_meta("U2", modified), description=f"U2: {modified} >= {created}."),
        ]
    return expectations


def _free_text(dataset: Dataset, table: PublishedTable, settings: CheckSettings,
               rules: list[str]) -> list[Expectation]:
    """PII1 and PII2 in free text: one prefiltered scan of each free-text field answers for both rules."""
    import great_expectations.expectations as gxe

    expectations: list[Expectation] = [gxe.ExpectColumnToExist(column=f, meta=_meta("PII1", f))
                                       for f in dataset.free_text_fields if f not in table.columns]
    fields = [f for f in dataset.free_text_fields if f in table.columns]
    wanted = [r for r in ("PII1", "PII2") if r in rules]
    if not fields or not wanted:
        return expectations
    person_sql = _person_sql(dataset, settings)
    everywhere = [s.pattern for s in settings.steps("address", "all")]
    persons = [s.pattern for s in settings.steps("address", "person")]
    conditions = []  # (rule, field, condition on the field's value)
    for field in fields:
        value = _quote(field)
        found = {"PII1": _matches_any(value, [s.pattern for s in settings.pii_patterns if s.kind in PII1_KINDS]),
                 "PII2": " or ".join([*([_matches_any(value, everywhere)] if everywhere else []),
                                      *([f"({person_sql} and {_matches_any(value, persons)})"] if persons else [])])}
        conditions += [(rule, field, found[rule]) for rule in wanted if found[rule]]
    prefilter = " or ".join(f"{_quote(f)} ~* {_text(settings.pii_prefilter)}" for f in fields)
    # One aggregate over the prefiltered rows (a parallel scan), every rule's count beside the others.
    counts = ", ".join(f"count(*) filter (where {condition}) as c{i}" for i, (_, _, condition) in enumerate(conditions))
    rows = ", ".join(f"({_text(rule)}, {_text(field)}, c{i})" for i, (rule, field, _) in enumerate(conditions))
    sql = (f"select rule, field, failing from (select {counts} from __CHECKED_TABLE__ where {prefilter}) as counts,"
           f" lateral (values {rows}) as v (rule, field, failing) where failing > 0")
    expectations.append(_by_field(tuple(wanted), sql,
                                  f"{' and '.join(wanted)} in free text ({', '.join(fields)}): no email, card number,"
                                  " SSN, phone number or name after 'my name is'; a home address gives the block."))
    return expectations


def _pii1(dataset: Dataset, table: PublishedTable, settings: CheckSettings) -> list[Expectation]:
    """Every text field but free text (see _free_text), by distinct value: a few thousand, not a million."""
    categorical = [c for c in table.text_columns()
                   if c not in dataset.not_personal_fields and c not in dataset.free_text_fields]
    if not categorical:
        return []
    listed = ", ".join(_quote(c) for c in categorical)
    values = ", ".join(f"({_text(c)}, {_quote(c)}::text)" for c in categorical)
    patterns = [s.pattern for s in settings.pii_patterns if s.kind in PII1_KINDS]
    sql = (f"select field, count(*) as failing from (select distinct v.field, v.value from (select {listed}"
           f" from __CHECKED_TABLE__ group by {listed}) as combinations, lateral (values {values}) as v (field, value))"
           f" as distinct_values where value ~* {_text(settings.pii_prefilter)} and {_matches_any('value', patterns)}"
           " group by field")
    return [_by_field("PII1", sql, "PII1: no email, card number, SSN, phone number or name in any other text field"
                                   " (each distinct value once).")]


def _pii2(dataset: Dataset, table: PublishedTable, settings: CheckSettings) -> list[Expectation]:
    """Addresses and points; free text is in _free_text."""
    import great_expectations.expectations as gxe

    person_sql = _person_sql(dataset, settings)
    decimals = settings.coordinate_decimals
    expectations: list[Expectation] = []
    for field in dataset.address_fields:
        expectations.append(gxe.ExpectColumnValuesToNotMatchRegexList(
            column=field, regex_list=[r"(?i)^\s*(?![0-9]*00 block of |0 block of )[0-9]"],
            row_condition=_person_row_condition(dataset, settings), meta=_meta("PII2", field),
            description=f"PII2: {field} of person-related records is a block (1400 BLOCK OF MAIN ST)."))
    unrounded = []
    if dataset.geometry_field:
        column = _quote(dataset.geometry_field)
        # A tolerance, not equality: a point rounded coarser (2 decimals) is rounded enough.
        unrounded.append((dataset.geometry_field, (
            f"{person_sql} and {column} is not null and case when geometrytype({column}) = 'POINT'"
            f" then abs(st_x({column})::numeric - round(st_x({column})::numeric, {decimals})) > 1e-9"
            f" or abs(st_y({column})::numeric - round(st_y({column})::numeric, {decimals})) > 1e-9"
            f" else not ({column} = st_snaptogrid({column}, {10.0 ** -decimals})) end")))
    for field in (dataset.longitude_field, dataset.latitude_field):
        if field:
            column = _quote(field)
            unrounded.append((field, f"{person_sql} and abs({column}::numeric - round({column}::numeric,"
                                     f" {decimals})) > 1e-9"))
    if unrounded:
        expectations.append(_by_field("PII2", _counts_where(unrounded),
                                      f"PII2: points of person-related records are rounded to {decimals} decimals."))
    return expectations


def _pii3(dataset: Dataset, table: PublishedTable, settings: CheckSettings) -> list[Expectation]:
    import great_expectations.expectations as gxe

    expectations: list[Expectation] = []
    flags = []
    for count in dataset.count_fields:
        expectations += [
            gxe.ExpectColumnToExist(column=count.name, meta=_meta("PII3", count.name)),
            gxe.ExpectColumnToExist(column=count.flag, meta=_meta("PII3", count.flag)),
        ]
        if count.name not in table.columns or count.flag not in table.columns:
            continue
        expectations.append(gxe.ExpectColumnValuesToBeBetween(
            column=count.name, min_value=settings.small_cell_min, meta=_meta("PII3", count.name),
            description=f"PII3: {count.name} is never published below {settings.small_cell_min}."))
        flag = _quote(count.flag)
        withheld = " or ".join(f"{_quote(c)} is not null" for c in (count.name, *count.dependents)
                               if c in table.columns)
        flags.append((count.flag, f"{flag} is null or ({flag} and ({withheld}))"))
    if flags:
        expectations.append(_by_field("PII3", _counts_where(flags), "PII3: where a count is flagged as suppressed,"
                                                                    " it and what derives from it are null."))
    return expectations


def _pii4(dataset: Dataset, table: PublishedTable, settings: CheckSettings) -> list[Expectation]:
    import great_expectations.expectations as gxe

    field = dataset.request_type_field or ""
    return [gxe.ExpectColumnValuesToNotBeInSet(
        column=field, value_set=list(settings.sensitive_request_types), meta=_meta("PII4", field),
        description="PII4: sensitive request types are published only in aggregates.")]


def _q1(dataset: Dataset, table: PublishedTable, settings: CheckSettings) -> list[Expectation]:
    import great_expectations.expectations as gxe

    return [
        # An empty publish model means the data did not make it (no policy, an empty mart): say so.
        gxe.ExpectTableRowCountToBeBetween(min_value=1, meta=_meta("Q1", "(rows)")),
        *[gxe.ExpectColumnValuesToNotBeNull(column=f, meta=_meta("Q1", f)) for f in dataset.required_fields],
    ]


def _q2(dataset: Dataset, table: PublishedTable, settings: CheckSettings) -> list[Expectation]:
    import great_expectations.expectations as gxe

    extent = settings.city_extent
    expectations: list[Expectation] = [
        gxe.ExpectColumnValuesToBeBetween(column=f, min_value=low, max_value=high, meta=_meta("Q2", f))
        for f, (low, high) in dataset.ranges.items()
    ]
    if dataset.longitude_field:
        expectations.append(gxe.ExpectColumnValuesToBeBetween(
            column=dataset.longitude_field, min_value=extent.min_longitude, max_value=extent.max_longitude,
            meta=_meta("Q2", dataset.longitude_field)))
    if dataset.latitude_field:
        expectations.append(gxe.ExpectColumnValuesToBeBetween(
            column=dataset.latitude_field, min_value=extent.min_latitude, max_value=extent.max_latitude,
            meta=_meta("Q2", dataset.latitude_field)))
    if dataset.geometry_field:
        column = _quote(dataset.geometry_field)
        envelope = (f"st_makeenvelope({extent.min_longitude}, {extent.min_latitude},"
                    f" {extent.max_longitude}, {extent.max_latitude}, 4326)")
        expectations.append(_by_field("Q2", _counts_where(
            [(dataset.geometry_field, f"{column} is not null and not ({column} && {envelope})")]),
            "Q2: points fall inside the city's extent."))
    return expectations


BUILDERS = {"C2": _c2, "C4": _c4, "F5": _f5, "U2": _u2, "PII1": _pii1, "PII2": _pii2, "PII3": _pii3,
            "PII4": _pii4, "Q1": _q1, "Q2": _q2}


def expectations_for(dataset: Dataset, table: PublishedTable, settings: CheckSettings,
                     rules: list[str]) -> list[Expectation]:
    """The suite of a dataset, for the rules given (waived rules are left out by the caller)."""
    return [*_free_text(dataset, table, settings, rules),
            *[e for rule in rules if rule in BUILDERS for e in BUILDERS[rule](dataset, table, settings)]]
