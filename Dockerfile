# Governed executor: the Hono service + agentsh (pinned in agentsh/VERSION) in one image.
#
#   docker build .                                    # agentsh built from the Go module proxy
#   docker build --build-arg AGENTSH_SOURCE=prebuilt .   # agentsh from .agentsh-prebuilt/
#   scripts/build-image                               # podman, with local stand-in base images
#
# Build arguments (all optional):
#   AGENTSH_SOURCE      module (default): the agentsh-module stage runs scripts/install-agentsh,
#                       which builds agentsh + agentsh-unixwrap from the Go module proxy.
#                       prebuilt: the agentsh-prebuilt stage copies them from the build-context
#                       directory .agentsh-prebuilt/ (gitignored; never commit binaries), e.g.
#                       taken from agentsh's official .deb (amd64; it has no arm64 unixwrap):
#                         dpkg-deb -x agentsh_<VERSION>_amd64.deb x
#                         cp x/usr/bin/agentsh x/usr/bin/agentsh-unixwrap \
#                            x/usr/lib/agentsh/libagentsh-ptracer.so .agentsh-prebuilt/
#                       Their version must equal agentsh/VERSION (checked below). The launcher
#                       agentsh-launch is ours: build it with scripts/install-agentsh
#                       (AGENTSH_PREFIX=DIR) and place it there too.
#   NODE_IMAGE, GO_IMAGE  base images, public and pinned by default; replaceable by local
#                       stand-ins (scripts/build-image makes them where no registry is reachable).
#
# Only the selected agentsh-* stage is built (BuildKit, and buildah/podman >= 1.24 skip unused
# stages; the classic docker builder without BuildKit would build both and is not supported).
# Base images are fully qualified so podman needs no short-name configuration. Versions are
# pinned here (images), in agentsh/VERSION (agentsh) and in package-lock.json (npm). Debian
# packages follow the pinned Debian release (bookworm) and its security updates: exact .deb
# versions are not pinned because the archive drops superseded ones and old pins stop building.
ARG NODE_IMAGE=docker.io/library/node:20.20.2-bookworm-slim
ARG GO_IMAGE=docker.io/library/golang:1.25.14-bookworm
ARG AGENTSH_SOURCE=module

# --- agentsh, source "module": built by the same script as local runs and CI ------------------
# (It builds no libagentsh-ptracer.so, see the prebuilt stage: on hosts with Yama
# ptrace_scope=1 prefer the .deb's binaries.)
FROM ${GO_IMAGE} AS agentsh-module
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev pkg-config libseccomp-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY agentsh/VERSION agentsh/go.mod agentsh/go.sum agentsh/tools.go agentsh/
COPY agentsh/launcher agentsh/launcher
COPY scripts/install-agentsh scripts/install-agentsh
RUN AGENTSH_PREFIX=/opt/agentsh scripts/install-agentsh

# --- agentsh, source "prebuilt": binaries from .agentsh-prebuilt/ in the build context ----------
FROM ${NODE_IMAGE} AS agentsh-prebuilt
COPY .agentsh-prebuilt/ /tmp/agentsh-prebuilt/
# agentsh and agentsh-unixwrap are required; libagentsh-ptracer.so is taken when present:
# agentsh-unixwrap LD_PRELOADs it from its own directory so that the server may read its
# children's memory (seccomp file-rule path resolution) on hosts with Yama ptrace_scope=1.
# Without that read the file rules fail and the boot self-test refuses to start (measured by
# denying process_vm_readv; Yama itself is absent on the test machine's kernel).
RUN set -eu; src=/tmp/agentsh-prebuilt; dst=/opt/agentsh/bin; mkdir -p "$dst"; \
    for f in agentsh agentsh-unixwrap agentsh-launch; do \
      [ -f "$src/$f" ] || { echo "AGENTSH_SOURCE=prebuilt: .agentsh-prebuilt/$f is missing" >&2; exit 1; }; \
      install -m 0755 "$src/$f" "$dst/$f"; \
    done; \
    if [ -f "$src/libagentsh-ptracer.so" ]; then install -m 0644 "$src/libagentsh-ptracer.so" "$dst/"; fi; \
    rm -rf "$src"

# --- the selected source ------------------------------------------------------------------------
FROM agentsh-${AGENTSH_SOURCE} AS agentsh

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
# sudo openssh-client netcat-openbsd nmap are installed ON PURPOSE: the demos show that
# sudo/ssh/nc/nmap are blocked by agentsh's policy, which means nothing if the binaries are absent
# (a "command not found" would look like a block). The policy, not their absence, stops them.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      tini bash ca-certificates curl git python3 python3-pip libseccomp2 procps \
      sudo openssh-client netcat-openbsd nmap \
 && rm -rf /var/lib/apt/lists/*
COPY --from=agentsh /opt/agentsh/bin/ /usr/local/bin/
COPY agentsh/VERSION /tmp/agentsh-VERSION
# Fail the build, not the deploy, if the binaries are not the pinned version or miss a library.
RUN set -eu; want="$(tr -d '[:space:]' </tmp/agentsh-VERSION)"; rm /tmp/agentsh-VERSION; \
    got="$(agentsh --version 2>&1 | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n1)"; \
    [ "$got" = "$want" ] || { echo "agentsh reports '$got', agentsh/VERSION pins '$want'" >&2; exit 1; }; \
    if ldd /usr/local/bin/agentsh /usr/local/bin/agentsh-unixwrap | grep 'not found'; then exit 1; fi
# What a container could enable that a development host must not:
# - agentsh's shell shim (`agentsh shim install-shell` replaces /bin/sh and /bin/bash with
#   agentsh-shell-shim, so that interactive `docker exec -it ... bash` shells go through agentsh).
#   It rewrites the root filesystem: only ever inside an image, never on a host. Not enabled,
#   measured with v0.16.9 in this image: (1) the shim execs /bin/bash.real, which the policy's
#   nested-execve rules deny (default-deny-execve), so every governed command fails and the
#   service refuses to start; (2) with bash.real/sh.real allowed, interactive shells only get the
#   top-level pre-check: agentsh's PTY path does not use agentsh-unixwrap, so `sudo id` ran and
#   /etc/shadow was read inside such a shell (no seccomp, no Landlock). Revisit on upgrades.
# - sandbox.cgroups (per-command resource limits) needs a pure cgroup v2 host: enable it in
#   agentsh/config.yaml only where the container runtime gives one (agentsh refuses to start on a
#   hybrid v1+v2 layout). sandbox.ptrace needs CAP_SYS_PTRACE, which Render-class hosts lack.
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
