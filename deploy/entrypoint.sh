#!/bin/sh
# Writes the bearer tokens file from the secret the task definition injects, then serves over HTTP.
# The secret holds SHA-256 hashes only (agent-memory tokens add), never usable tokens.
set -eu
: "${AGENT_MEMORY_TOKENS_JSON:?set AGENT_MEMORY_TOKENS_JSON from the tokens secret (see deploy/README.md)}"
umask 077
tokens="${TMPDIR:-/tmp}/agent-memory-tokens.json"
printf '%s' "$AGENT_MEMORY_TOKENS_JSON" > "$tokens"
unset AGENT_MEMORY_TOKENS_JSON
export AGENT_MEMORY_TOKENS_FILE="$tokens"
exec agent-memory serve --transport http "$@"
