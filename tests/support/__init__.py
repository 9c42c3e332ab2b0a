"""Test helpers shared by more than one service's tests (kept out of conftest files so they can be imported)."""
