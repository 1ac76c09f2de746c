"""Enrollment: regions, occupations, agents, partners and participant registration."""
