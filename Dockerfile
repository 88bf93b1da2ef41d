# One image for every process: which one runs is the compose service's `command`, each through
# scripts/with_instance_id.sh (a service.instance.id of its own per container, also when scaled).
FROM denoland/deno:2.9.6
WORKDIR /app
COPY deno.json deno.lock ./
COPY vendor/ vendor/
COPY shared/ shared/
COPY services/ services/
COPY gateway/ gateway/
COPY scripts/ scripts/
# Download and cache every dependency at build time, not at container start.
RUN deno cache gateway/main.ts services/*/main.ts scripts/instance_id.ts
USER deno
