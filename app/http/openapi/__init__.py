"""The OpenAPI document and its offline reference page (see document.py)."""
