#!/bin/sh
# Writes the bearer tokens file from the secret the task definition injects (when one is set),
# then serves over HTTP. The secret holds SHA-256 hashes only (agent-memory tokens add), never
# usable tokens. Without it, agents sign in with JWTs (AGENT_MEMORY_JWT_*): the server refuses to
# start when neither is configured.
set -eu
if [ -n "${AGENT_MEMORY_TOKENS_JSON:-}" ]; then
  umask 077
  tokens="${TMPDIR:-/tmp}/agent-memory-tokens.json"
  printf '%s' "$AGENT_MEMORY_TOKENS_JSON" > "$tokens"
  unset AGENT_MEMORY_TOKENS_JSON
  export AGENT_MEMORY_TOKENS_FILE="$tokens"
elif [ -z "${AGENT_MEMORY_JWT_ISSUER:-}" ]; then
  echo "agent-memory: set AGENT_MEMORY_TOKENS_JSON from the tokens secret, or AGENT_MEMORY_JWT_ISSUER and AGENT_MEMORY_JWT_JWKS_URL (see docs/DEPLOYMENT.md)" >&2
  exit 2
fi
exec agent-memory serve --transport http "$@"
