"""Helpers shared by the test suites, one concept per module; conftest files wrap them as
fixtures."""
