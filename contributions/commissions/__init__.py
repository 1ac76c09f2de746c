"""Perisai commissions: the rules as dated data, the monthly statement of each agent and each
Perisai office computed from the ledger, and its draft -> approved -> paid workflow
(docs/contributions.md, "Perisai commissions")."""
