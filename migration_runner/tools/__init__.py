"""Authoring and inspection tools: scaffold, snapshot, drift, adoption, status, history checks."""
