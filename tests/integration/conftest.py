def pytest_configure(config):
    # pytest-xdist registers this marker; runs with `-p no:xdist` (the smoke pass, the
    # per-engineer runs) need it declared too, or --strict-markers refuses to collect.
    config.addinivalue_line("markers", "xdist_group(name): run these tests on one xdist worker")
