"""The ledger service. See README.md beside this file and DESIGN.md §4."""
