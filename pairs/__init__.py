"""Persona pairs and templates, the mirror-test lint, the template screen, pair generation and curation."""
