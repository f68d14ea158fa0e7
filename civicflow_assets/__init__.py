"""CivicFlow: a city's raw public-sector data turned into trustworthy open data.

Every process that runs CivicFlow code (the CLI, the code server, run and step workers) imports this package
first, so secrets are masked in its logs before anything logs (see redaction.py).
"""

from civicflow_assets import redaction

redaction.install()
