"""Configuration: environment settings and the provider catalog."""
