"""walletctl, the operator CLI."""
