"""The browser fixture (headless Chromium through Playwright) for every browser test."""

from .test_request_flow import browser_page  # noqa: F401  (a fixture, found by name)
