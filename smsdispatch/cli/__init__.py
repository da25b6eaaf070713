"""The `smsdispatch` command."""
