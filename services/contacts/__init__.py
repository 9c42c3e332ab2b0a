"""The contacts service. See README.md beside this file and DESIGN.md §4."""
