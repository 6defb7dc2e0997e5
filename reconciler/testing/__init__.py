"""Test helpers that users may use too (fakekube, local PostgreSQL)."""
