"""Prompt templates (TOML data files) and structured JSON output."""

from .structured import StructuredOutputError, check_schema, load_schema, parse_json
from .templates import PromptTemplate, TemplateLibrary, context_variables, load_templates, resolve_template

__all__ = ["PromptTemplate", "TemplateLibrary", "load_templates", "resolve_template", "context_variables",
           "load_schema", "check_schema", "parse_json", "StructuredOutputError"]
