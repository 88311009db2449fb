"""Example plugins shipped with actorlog: a sandbox, an LLM with pluggable backends, and an agent."""
