"""Evaluation: retrieval metrics on BEIR-format data (more tasks to come)."""
