"""The parts of the end-to-end script integrations/mcp/e2e.py: harness.py
(what they share), proxy_checks.py and tools_checks.py (the two scenarios)."""
