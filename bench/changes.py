"""The change the incremental benches replay: 1% of a 311 extract's requests completed one hour later (or
completed, when they were open), as the next export of the same extract would show them."""

from __future__ import annotations

import random


def complete_one_percent(header: list[str], rows: list[list[str]], seed: int) -> int:
    """Changes 1% of `rows` in place; answers how many."""
    columns = {name.lower().replace(" ", "_"): i for i, name in enumerate(header)}
    completed, created, status = columns["completed_at"], columns["created_date"], columns["status_code"]
    rng = random.Random(seed)
    changed = 0
    for row in rows:
        if rng.random() < 0.01:
            value = row[completed] or row[created]
            row[completed] = f"{value[:11]}{int(value[11:13]) % 12 + 1:02d}{value[13:]}"
            row[status] = "O-CLOSED"
            changed += 1
    return changed
