# Governed executor: the Hono service + agentsh (pinned in agentsh/VERSION) in one image.
# Base images are build arguments so they can be replaced by local stand-ins:
#   docker build --build-arg GO_IMAGE=... --build-arg NODE_IMAGE=... .
ARG GO_IMAGE=golang:1.25-bookworm
ARG NODE_IMAGE=node:20-bookworm-slim

# --- agentsh and its seccomp/Landlock helper, built by the same script as local and CI -------
FROM ${GO_IMAGE} AS agentsh
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev pkg-config libseccomp-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY agentsh/VERSION agentsh/VERSION
COPY scripts/install-agentsh scripts/install-agentsh
RUN AGENTSH_PREFIX=/opt/agentsh scripts/install-agentsh

# --- the app, compiled with tsc ----------------------------------------------------------------
FROM ${NODE_IMAGE} AS app
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src src
RUN npm run build && npm prune --omit=dev

# --- runtime: only what the service and the agents' dev tools need ----------------------------
FROM ${NODE_IMAGE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      tini bash ca-certificates curl git python3 python3-pip libseccomp2 procps \
 && rm -rf /var/lib/apt/lists/*
COPY --from=agentsh /opt/agentsh/bin/ /usr/local/bin/
WORKDIR /app
COPY --from=app /app/node_modules node_modules
COPY --from=app /app/dist dist
COPY package.json ./
COPY agentsh agentsh
COPY scripts/boot scripts/boot
RUN mkdir -p /workspace /var/lib/governed-executor
ENV NODE_ENV=production PORT=10000 WORKSPACE=/workspace AGENTSH_STATE_DIR=/var/lib/governed-executor
EXPOSE 10000
# tini reaps the governed commands' orphans and forwards SIGTERM to the boot script.
ENTRYPOINT ["/usr/bin/tini", "--", "/app/scripts/boot"]
