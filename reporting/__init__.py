"""Reporting: targets, rollups, dashboards, exports (see the reporting issue)."""
