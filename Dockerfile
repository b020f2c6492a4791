# Governed executor: the Hono service + agentsh (pinned in agentsh/VERSION, go.mod, go.sum) in one image.
#
#   docker build -t governed-executor .                 # agentsh built from its Go module
#   docker build --build-context goproxy=/path/to/mirror \
#     --build-arg GOPROXY=file:///goproxy,<your proxy> .   # the same, from a module mirror
#   tools/container/build-image                          # podman, with local stand-in base images
#
# Build arguments (all optional):
#   AGENTSH_SOURCE      module (default): the agentsh-module stage runs scripts/install-agentsh,
#                       which builds agentsh, agentsh-unixwrap, agentsh-stub and
#                       libagentsh-ptracer.so from the module pinned by agentsh/go.sum (Go
#                       refuses any other bytes, whatever proxy or mirror serves them).
#                       prebuilt: the agentsh-prebuilt stage copies them from the build-context
#                       directory .agentsh-prebuilt/ (gitignored; never commit binaries), e.g.
#                       taken from agentsh's official .deb. Their version must equal agentsh/VERSION.
#   GOPROXY             the module proxy list for the module route (default: the Go image's).
#                       A file:// mirror is read from the build context named "goproxy", mounted
#                       at /goproxy during that one RUN only: it never reaches an image layer.
#                       The launcher agentsh-launch is this project's own and always built
#                       from agentsh/launcher/ (the launcher stage).
#   NODE_IMAGE, GO_IMAGE  base images, public and pinned by default; replaceable by local
#                       stand-ins (tools/container/build-image makes them where no registry is
#                       reachable). Pinned by exact version tag; add @sha256 digests where your
#                       registry reports them.
#
# Only the selected agentsh-* stage is built (BuildKit, and buildah/podman >= 1.24 skip unused
# stages). Debian packages follow the pinned Debian release (bookworm) and its security updates.
ARG NODE_IMAGE=docker.io/library/node:24.21.0-bookworm-slim
ARG GO_IMAGE=docker.io/library/golang:1.25.14-bookworm
ARG AGENTSH_SOURCE=module

# --- an empty module mirror unless the build supplies one (--build-context goproxy=DIR) -------
FROM scratch AS goproxy

# --- agentsh, source "module": built by the same script as local runs and CI ------------------
FROM ${GO_IMAGE} AS agentsh-module
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev pkg-config libseccomp-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY agentsh/VERSION agentsh/go.mod agentsh/go.sum agentsh/tools.go agentsh/
COPY scripts/install-agentsh scripts/build-launcher scripts/
ARG GOPROXY
# Go's module and build caches persist between builds (cache mounts), never in a layer.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    --mount=type=bind,from=goproxy,target=/goproxy \
    GOPROXY="${GOPROXY:-$(go env GOPROXY)}" AGENTSH_PREFIX=/opt/agentsh AGENTSH_NO_LAUNCHER=1 \
      scripts/install-agentsh \
 && rm -f /opt/agentsh/bin/.agentsh-build

# --- agentsh, source "prebuilt": binaries from .agentsh-prebuilt/ in the build context ----------
FROM ${NODE_IMAGE} AS agentsh-prebuilt
COPY .agentsh-prebuilt/ /tmp/agentsh-prebuilt/
# agentsh and agentsh-unixwrap are required; agentsh-stub and libagentsh-ptracer.so are taken
# when present (unixwrap LD_PRELOADs the latter so the server may read its children's memory
# on hosts with Yama ptrace_scope=1; without it the file rules fail and the service refuses to
# start there).
RUN set -eu; src=/tmp/agentsh-prebuilt; dst=/opt/agentsh/bin; mkdir -p "$dst"; \
    for f in agentsh agentsh-unixwrap; do \
      [ -f "$src/$f" ] || { echo "AGENTSH_SOURCE=prebuilt: .agentsh-prebuilt/$f is missing" >&2; exit 1; }; \
      install -m 0755 "$src/$f" "$dst/$f"; \
    done; \
    if [ -f "$src/agentsh-stub" ]; then install -m 0755 "$src/agentsh-stub" "$dst/"; fi; \
    if [ -f "$src/libagentsh-ptracer.so" ]; then install -m 0644 "$src/libagentsh-ptracer.so" "$dst/"; fi; \
    rm -rf "$src"

# --- the selected source ------------------------------------------------------------------------
FROM agentsh-${AGENTSH_SOURCE} AS agentsh

# --- our launcher agentsh-launch (C, static): its own stage, so a change rebuilds only it -------
FROM ${GO_IMAGE} AS launcher
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY scripts/build-launcher scripts/build-launcher
COPY agentsh/launcher agentsh/launcher
RUN scripts/build-launcher /opt/launcher && rm -f /opt/launcher/.agentsh-launch-build

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
# tini: PID 1. bash curl git python3 python3-pip ca-certificates procps: the agents' tools and
# the demos. libseccomp2: agentsh and agentsh-unixwrap link it.
# gcc libc6-dev make: agents build and run their own code (docs/security.md: the native attacker test
# compiles in the container too).
# sudo openssh-client netcat-openbsd nmap are installed ON PURPOSE: the demos show that
# sudo/ssh/nc/nmap are blocked by agentsh's policy, which means nothing if the binaries are absent
# (a "command not found" would look like a block). The policy, not their absence, stops them.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      tini bash ca-certificates curl git python3 python3-pip python3-venv libseccomp2 procps \
      gcc libc6-dev make \
      sudo openssh-client netcat-openbsd nmap \
 && rm -rf /var/lib/apt/lists/*
COPY --from=agentsh /opt/agentsh/bin/ /usr/local/bin/
COPY --from=launcher /opt/launcher/agentsh-launch /usr/local/bin/agentsh-launch
COPY agentsh/VERSION /tmp/agentsh-VERSION
# Fail the build, not the deploy, if the binaries are not the pinned version or miss a library.
RUN set -eu; want="$(tr -d '[:space:]' </tmp/agentsh-VERSION)"; rm /tmp/agentsh-VERSION; \
    got="$(agentsh --version 2>&1 | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n1)"; \
    [ "$got" = "$want" ] || { echo "agentsh reports '$got', agentsh/VERSION pins '$want'" >&2; exit 1; }; \
    if ldd /usr/local/bin/agentsh /usr/local/bin/agentsh-unixwrap | grep 'not found'; then exit 1; fi
# Not enabled here, on purpose: agentsh's shell shim (its PTY path skips the seccomp/Landlock
# wrapper) and sandbox.cgroups (needs a pure cgroup v2 host); see docs/security.md "Known gaps".
WORKDIR /app
COPY --from=app /app/node_modules node_modules
COPY --from=app /app/dist dist
COPY package.json ./
COPY agentsh agentsh
COPY scripts/boot scripts/boot
RUN mkdir -p /workspace /sessions /home/gexec /var/lib/governed-executor
ENV NODE_ENV=production PORT=10000 WORKSPACE=/workspace AGENTSH_STATE_DIR=/var/lib/governed-executor
EXPOSE 10000
# /health is 503 while enforcement is unverified or lost; agentsh boot + canaries take a few seconds.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD curl -fsS --max-time 4 "http://127.0.0.1:${PORT}/health" >/dev/null || exit 1
# tini reaps the governed commands' orphans and forwards SIGTERM to the boot script.
ENTRYPOINT ["/usr/bin/tini", "--", "/app/scripts/boot"]
