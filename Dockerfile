# One image for every role: the role is the command (`master`, `auxiliary`, `local`), every
# setting an environment variable (see README). Works with the classic builder and BuildKit.
#
#   docker build -t tiercache .                                   # all cores
#   docker build --build-arg CARGO_BUILD_JOBS=1 -t tiercache .    # gentle on a shared machine
#   docker run --rm -p 8000:8000 tiercache                        # `local`: master + 3 auxiliaries
#
# No registry? scripts/build-images.sh creates the two base images below from Debian packages.
ARG BUILDER_IMAGE=rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---- planner: the workspace's manifests with stub sources -----------------------------------
# Its output changes only when a Cargo.toml or Cargo.lock changes, so the dependency layer of
# the builder stays cached while the code changes.
FROM ${BUILDER_IMAGE} AS planner
WORKDIR /src
COPY . .
RUN set -eu; \
    mkdir -p /recipe; cp Cargo.lock /recipe/; \
    find . -name Cargo.toml -not -path './target/*' | while read -r manifest; do \
      dir=$(dirname "$manifest"); mkdir -p "/recipe/$dir/src"; cp "$manifest" "/recipe/$dir/"; \
      [ ! -f "$dir/build.rs" ] || cp "$dir/build.rs" "/recipe/$dir/"; \
      [ ! -f "$dir/src/lib.rs" ] || : > "/recipe/$dir/src/lib.rs"; \
      [ ! -f "$dir/src/main.rs" ] || echo 'fn main() {}' > "/recipe/$dir/src/main.rs"; \
      sed -n 's/^[[:space:]]*path[[:space:]]*=[[:space:]]*"\([^"]*\.rs\)".*/\1/p' "$manifest" | \
      while read -r target; do \
        mkdir -p "$(dirname "/recipe/$dir/$target")"; \
        if grep -q 'fn main' "$dir/$target" 2>/dev/null; then echo 'fn main() {}' > "/recipe/$dir/$target"; \
        else : > "/recipe/$dir/$target"; fi; \
      done; \
    done

# ---- builder --------------------------------------------------------------------------------
FROM ${BUILDER_IMAGE} AS builder
# Parallel rustc jobs; empty = one per core.
ARG CARGO_BUILD_JOBS=
# No debug info in the image's binary (the workspace keeps line tables for local profiling).
ENV CARGO_PROFILE_RELEASE_DEBUG=0 \
    CARGO_TERM_COLOR=never
WORKDIR /src
# 1. Every dependency, against stub sources: cached until a manifest or Cargo.lock changes.
COPY --from=planner /recipe/ ./
RUN jobs="${CARGO_BUILD_JOBS:-}"; unset CARGO_BUILD_JOBS; \
    cargo build --release --locked --bin tiercache ${jobs:+--jobs "$jobs"}
# 2. The real sources. Touch them: they may be older than the stub build's outputs.
# The commit `tiercache --version` reports (the build context has no .git), declared only
# here so a new commit does not rebuild the dependency layer above:
#   docker build --build-arg GIT_COMMIT=$(git rev-parse --short=12 HEAD) .
ARG GIT_COMMIT=
COPY . .
RUN jobs="${CARGO_BUILD_JOBS:-}"; unset CARGO_BUILD_JOBS; \
    find . -name '*.rs' -not -path './target/*' -exec touch {} + \
 && cargo build --release --locked --bin tiercache ${jobs:+--jobs "$jobs"} \
 && install -m 0755 target/release/tiercache /usr/local/bin/tiercache \
 && /usr/local/bin/tiercache --version

# ---- runtime --------------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE}
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/tiercache --shell /usr/sbin/nologin tiercache \
 && mkdir -p /var/lib/tiercache/backup \
 && chown -R tiercache:tiercache /var/lib/tiercache
COPY --from=builder /usr/local/bin/tiercache /usr/local/bin/tiercache
COPY docker/healthcheck.sh /usr/local/bin/tiercache-healthcheck
USER tiercache
WORKDIR /var/lib/tiercache
# Snapshots of an auxiliary: mount a volume here to keep them across restarts.
ENV BACKUP_DIR=/var/lib/tiercache/backup
# `tiercache local` binds 127.0.0.1 by default; in a container it must listen on every
# interface so `docker run -p` reaches it.
ENV BIND_ADDR=0.0.0.0
# master / local HTTP, auxiliary HTTP (/health, /metrics), auxiliary data port.
EXPOSE 8000 6379 3001 4001
# GET /health on $PORT (or the role's default port) over bash's /dev/tcp: no curl needed.
HEALTHCHECK --interval=5s --timeout=4s --start-period=20s --retries=3 CMD ["tiercache-healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["tiercache"]
CMD ["local"]
