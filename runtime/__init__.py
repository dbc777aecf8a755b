"""Trellis runtime: spec, expressions, compiler, engine, connectors.

Public surface for code-first users: ``from runtime import workflows``.
"""
