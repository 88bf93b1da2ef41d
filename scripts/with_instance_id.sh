#!/bin/sh
# Runs its arguments with a service.instance.id of their own in OTEL_RESOURCE_ATTRIBUTES (beside
# the operator's attributes): compose.yaml's commands, so that `docker compose up --scale` gives
# each container an identity of its own over OTLP. Deno reads the variable as a process starts,
# so it is set here, before `exec`; scripts/instance_id.ts makes it (as the start:<name> tasks do).
set -e
OTEL_RESOURCE_ATTRIBUTES="$(OTEL_DENO=false deno run --allow-env=OTEL_RESOURCE_ATTRIBUTES scripts/instance_id.ts)"
export OTEL_RESOURCE_ATTRIBUTES
exec "$@"
