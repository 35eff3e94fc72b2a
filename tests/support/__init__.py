"""Helpers shared by test suites: building the bridge's AWS resources and loading handlers."""
