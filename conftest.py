# Fixtures any test may use: the project's real CKAN, started once per session when a test asks for it.
pytest_plugins = ["tests.ckan_fixtures"]
