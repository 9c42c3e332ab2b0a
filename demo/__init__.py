"""``make demo``: a narrated walk-through of the wallet platform against a running suite."""
