#!/usr/bin/env bash
# Builds, from Debian's packages alone, every image that Dockerfile and docker-compose.yml use,
# under the exact names they use, so `docker-compose up --build -d` works where no image registry
# is reachable (air-gapped sites, CI). Needs: a Docker engine, root (or sudo) for debootstrap,
# and access to a Debian mirror. Where a registry *is* reachable you do not need this script.
#
#   debian:bookworm-slim      debootstrap --variant=minbase bookworm, then `docker import`
#   rust:<ver>-slim-bookworm  that base + gcc/libc6-dev from Debian + the host's Rust toolchain
#                             (rustup's, found with `rustc --print sysroot`; Debian's rustc is too old)
#   zookeeper:<tag>           Debian's zookeeper + default-jre-headless, run like the official image
#   nginx:<tag>               Debian's nginx, run like the official image
#   prom/prometheus:<tag>     Debian's prometheus, run like the official image
#
# Grafana is not packaged by Debian, so it is not built here: compose-smoke.sh starts the stack
# without it and checks its provisioning files statically.
#
# An image that already exists is left alone (use --force to rebuild the stand-ins).
# Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian), DOCKER (default docker).
set -euo pipefail
cd "$(dirname "$0")/.."

MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DOCKER=${DOCKER:-docker}
FORCE=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    -h | --help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'build-images: %s\n' "$*" >&2; exit 1; }

# Image names, read from the files that use them so they can never drift apart.
BASE_IMAGE=$(sed -n 's/^ARG RUNTIME_IMAGE=\(.*\)$/\1/p' Dockerfile | head -n1)
RUST_IMAGE=$(sed -n 's/^ARG BUILDER_IMAGE=\(.*\)$/\1/p' Dockerfile | head -n1)
compose_image() { sed -n "s#^ *image: *\\(${1}:[^ ]*\\) *\$#\\1#p" docker-compose.yml | head -n1; }
ZK_IMAGE=$(compose_image zookeeper)
NGINX_IMAGE=$(compose_image nginx)
PROM_IMAGE=$(compose_image prom/prometheus)
for v in BASE_IMAGE RUST_IMAGE ZK_IMAGE NGINX_IMAGE PROM_IMAGE; do
  [ -n "${!v}" ] || die "could not read $v from Dockerfile/docker-compose.yml"
done

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

have_image() { [ "$FORCE" -eq 0 ] && $DOCKER image inspect "$1" >/dev/null 2>&1; }

WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/tiercache-images.XXXXXX")
cleanup() { $SUDO rm -rf "$WORK"; }
trap cleanup EXIT

# `docker build` of a generated Dockerfile; $1 = tag, $2 = context dir (holding Dockerfile).
build() {
  log "building $1"
  # Legacy builder on purpose: the engine may have no BuildKit/buildx.
  DOCKER_BUILDKIT=0 nice -n 19 $DOCKER build --force-rm --network host -t "$1" "$2" >&2
}

# --- debian:bookworm-slim ------------------------------------------------------------------
if [ "$FORCE" -eq 0 ] && $DOCKER image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  log "$BASE_IMAGE exists"
else
  command -v debootstrap >/dev/null 2>&1 || {
    log "installing debootstrap"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q debootstrap
  }
  suite=${BASE_IMAGE#debian:}; suite=${suite%-slim}
  root="$WORK/rootfs"
  log "debootstrap $suite from $MIRROR (a few minutes)"
  $SUDO debootstrap --variant=minbase "$suite" "$root" "$MIRROR" >&2
  # What the official slim image does: no docs/man/locales from later installs, no recommends,
  # apt lists and caches not kept, the security and updates suites enabled.
  $SUDO tee "$root/etc/dpkg/dpkg.cfg.d/docker-slim" >/dev/null <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
EOF
  $SUDO tee "$root/etc/apt/apt.conf.d/docker-slim" >/dev/null <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb || true"; };
EOF
  $SUDO tee "$root/etc/apt/sources.list" >/dev/null <<EOF
deb $MIRROR $suite main
deb $MIRROR $suite-updates main
deb http://deb.debian.org/debian-security $suite-security main
EOF
  # Files only: some postinst scripts (openjdk's) need /usr/share/man/man1 to exist.
  $SUDO find "$root"/usr/share/doc "$root"/usr/share/man "$root"/usr/share/info \
    "$root"/var/lib/apt/lists "$root"/var/cache/apt "$root"/var/log \
    \( -type f -o -type l \) ! -name copyright ! -name lock -delete
  $SUDO mkdir -p "$root"/usr/share/man/man1
  rootfs_image="tiercache-build/rootfs:$suite"
  log "importing the root file system as $rootfs_image"
  $SUDO tar --numeric-owner -C "$root" -c . |
    $DOCKER import \
      -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      -c 'CMD ["bash"]' - "$rootfs_image" >/dev/null
  $SUDO rm -rf "$root"
  # debootstrap fetched the release as it was; take the updates and security fixes too.
  mkdir -p "$WORK/base"
  cat >"$WORK/base/Dockerfile" <<EOF
FROM $rootfs_image
RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get upgrade -y -q \\
 && apt-get clean && rm -rf /var/lib/apt/lists/*
EOF
  build "$BASE_IMAGE" "$WORK/base"
  $DOCKER rmi "$rootfs_image" >/dev/null
fi

APT_INSTALL='apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends'
APT_CLEAN='apt-get clean && rm -rf /var/lib/apt/lists/*'

# --- rust:<ver>-slim-bookworm ----------------------------------------------------------------
if have_image "$RUST_IMAGE"; then
  log "$RUST_IMAGE exists"
else
  command -v rustc >/dev/null 2>&1 || die "no Rust toolchain on this host to put into $RUST_IMAGE"
  sysroot=$(rustc --print sysroot)
  host_ver=$(rustc --version | awk '{print $2}')
  want_ver=${RUST_IMAGE#rust:}; want_ver=${want_ver%%-*}
  case "$host_ver" in
    "$want_ver" | "$want_ver".*) ;;
    *) log "warning: host rustc is $host_ver but the image is named $RUST_IMAGE" ;;
  esac
  [ -x "$sysroot/bin/cargo" ] || die "no cargo in $sysroot/bin"
  ctx="$WORK/rust"
  tc="toolchains/$host_ver-x86_64-unknown-linux-gnu"
  mkdir -p "$ctx/toolchain"
  # bin, lib (rustc driver, LLVM, the std of the host target) and libexec; not the docs.
  cp -a "$sysroot/bin" "$sysroot/lib" "$ctx/toolchain/"
  [ -d "$sysroot/libexec" ] && cp -a "$sysroot/libexec" "$ctx/toolchain/"
  # Trust what the host trusts while cargo downloads crates (e.g. a TLS-inspecting proxy's CA
  # added to the host's bundle); Debian's own bundle otherwise.
  if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    cp /etc/ssl/certs/ca-certificates.crt "$ctx/host-ca-certificates.crt"
  else
    : >"$ctx/host-ca-certificates.crt"
  fi
  rm -f "$ctx/toolchain/bin/"{rust-analyzer,rls,cargo-miri,rust-gdb,rust-gdbgui,rust-lldb} || true
  cat >"$ctx/Dockerfile" <<EOF
FROM $BASE_IMAGE
RUN $APT_INSTALL ca-certificates gcc libc6-dev pkg-config make && $APT_CLEAN
ENV RUSTUP_HOME=/usr/local/rustup \\
    CARGO_HOME=/usr/local/cargo \\
    RUST_VERSION=$host_ver \\
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
COPY host-ca-certificates.crt /tmp/
RUN if [ -s /tmp/host-ca-certificates.crt ]; then cp /tmp/host-ca-certificates.crt /etc/ssl/certs/ca-certificates.crt; fi \\
 && rm /tmp/host-ca-certificates.crt
COPY toolchain /usr/local/rustup/$tc
RUN mkdir -p /usr/local/cargo/bin \\
 && for b in /usr/local/rustup/$tc/bin/*; do ln -s "\$b" /usr/local/cargo/bin/; done \\
 && chmod -R a+w /usr/local/cargo \\
 && cargo --version && rustc --version
CMD ["bash"]
EOF
  build "$RUST_IMAGE" "$ctx"
fi

# --- zookeeper -------------------------------------------------------------------------------
if have_image "$ZK_IMAGE"; then
  log "$ZK_IMAGE exists"
else
  ctx="$WORK/zookeeper"
  mkdir -p "$ctx"
  # The official image's interface: zkServer.sh start-foreground | status, data in /data,
  # ZOO_* environment variables (ZOO_MY_ID and ZOO_SERVERS for an ensemble), port 2181, user
  # zookeeper (uid/gid 1000 here, so Kubernetes can check runAsNonRoot and set fsGroup).
  cat >"$ctx/zkServer.sh" <<'EOF'
#!/bin/bash
# Stand-in for the official image's zkServer.sh (start-foreground | status), on Debian's package.
# Alone by default; with ZOO_SERVERS ("server.1=host:2888:3888;2181 server.2=..."), a member of
# that ensemble whose id is ZOO_MY_ID, or else the trailing ordinal of the hostname + 1 (zk-0 is
# 1: a Kubernetes StatefulSet's pods).
set -euo pipefail
port=${ZOO_PORT:-2181}
data=${ZOO_DATA_DIR:-/data}
cp=/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar:/etc/zookeeper/conf
case "${1:-start-foreground}" in
  start-foreground)
    mkdir -p "$data"
    admin=${ZOO_ADMINSERVER_ENABLED:-false}
    props=(-Dzookeeper.admin.enableServer="$admin"
      -Dzookeeper.4lw.commands.whitelist="${ZOO_4LW_COMMANDS_WHITELIST:-srvr,ruok}"
      -Dzookeeper.root.logger="${ZOO_LOG4J_PROP:-INFO,CONSOLE}")
    if [ -z "${ZOO_SERVERS:-}" ]; then
      exec java ${JVMFLAGS:--Xmx256m} "${props[@]}" -cp "$cp" org.apache.zookeeper.server.ZooKeeperServerMain \
        "$port" "$data" "${ZOO_TICK_TIME:-2000}" "${ZOO_MAX_CLIENT_CNXNS:-60}"
    fi
    id=${ZOO_MY_ID:-}
    if [ -z "$id" ]; then
      ordinal=$(hostname); ordinal=${ordinal##*-}
      case "$ordinal" in
        '' | *[!0-9]*) echo "zkServer.sh: set ZOO_MY_ID (hostname $(hostname) has no trailing ordinal)" >&2; exit 2 ;;
      esac
      id=$((ordinal + 1))
    fi
    echo "$id" >"$data/myid"
    cfg="$data/zoo.cfg"
    {
      echo "dataDir=$data"
      echo "clientPort=$port"
      echo "tickTime=${ZOO_TICK_TIME:-2000}"
      echo "initLimit=${ZOO_INIT_LIMIT:-10}"
      echo "syncLimit=${ZOO_SYNC_LIMIT:-5}"
      echo "maxClientCnxns=${ZOO_MAX_CLIENT_CNXNS:-60}"
      echo "autopurge.snapRetainCount=3"
      echo "autopurge.purgeInterval=24"
      echo "standaloneEnabled=false"
      echo "reconfigEnabled=false"
      # A member's own name may resolve to an address it cannot bind before its peers see it.
      echo "quorumListenOnAllIPs=true"
      for server in $ZOO_SERVERS; do echo "$server"; done
    } >"$cfg"
    echo "zkServer.sh: member $id of: $ZOO_SERVERS" >&2
    exec java ${JVMFLAGS:--Xmx256m} "${props[@]}" -cp "$cp" org.apache.zookeeper.server.quorum.QuorumPeerMain "$cfg"
    ;;
  status)
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    printf 'srvr' >&3
    out=$(timeout 5 cat <&3)
    mode=$(printf '%s\n' "$out" | sed -n 's/^Mode: //p')
    [ -n "$mode" ] || { echo "Error contacting service. It is probably not running."; exit 1; }
    echo "Mode: $mode"
    ;;
  *) echo "usage: zkServer.sh start-foreground|status" >&2; exit 2 ;;
esac
EOF
  cat >"$ctx/Dockerfile" <<EOF
FROM $BASE_IMAGE
# Debian's zookeeper package depends on the full default-jre; nothing to be done about that.
RUN groupadd --gid 1000 zookeeper && useradd --uid 1000 --gid 1000 --system --home-dir /var/lib/zookeeper \\
      --shell /bin/false zookeeper \\
 && mkdir -p /usr/share/man/man1 && $APT_INSTALL zookeeper default-jre-headless && $APT_CLEAN \\
 && mkdir -p /data /datalog && chown zookeeper:zookeeper /data /datalog
COPY zkServer.sh /usr/local/bin/zkServer.sh
RUN chmod 755 /usr/local/bin/zkServer.sh
ENV ZOO_DATA_DIR=/data ZOO_TICK_TIME=2000 ZOO_4LW_COMMANDS_WHITELIST=srvr,ruok
USER 1000:1000
WORKDIR /data
VOLUME ["/data", "/datalog"]
EXPOSE 2181 2888 3888
CMD ["zkServer.sh", "start-foreground"]
EOF
  build "$ZK_IMAGE" "$ctx"
fi

# --- nginx -----------------------------------------------------------------------------------
if have_image "$NGINX_IMAGE"; then
  log "$NGINX_IMAGE exists"
else
  ctx="$WORK/nginx"
  mkdir -p "$ctx"
  # The official image's interface: user nginx, logs to stdout/stderr, curl present,
  # nginx -g 'daemon off;', SIGQUIT to stop gracefully.
  cat >"$ctx/Dockerfile" <<EOF
FROM $BASE_IMAGE
RUN $APT_INSTALL nginx libnginx-mod-stream curl ca-certificates && $APT_CLEAN \\
 && useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin nginx \\
 && rm -f /etc/nginx/sites-enabled/default \\
 && mkdir -p /var/lib/nginx /var/cache/nginx && chown -R nginx:nginx /var/lib/nginx /var/cache/nginx \\
 && ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
EOF
  build "$NGINX_IMAGE" "$ctx"
fi

# --- prom/prometheus -------------------------------------------------------------------------
if have_image "$PROM_IMAGE"; then
  log "$PROM_IMAGE exists"
else
  ctx="$WORK/prometheus"
  mkdir -p "$ctx"
  # The official image's interface: ENTRYPOINT prometheus, config /etc/prometheus/prometheus.yml,
  # data /prometheus, user nobody, port 9090, wget for health checks.
  cat >"$ctx/Dockerfile" <<EOF
FROM $BASE_IMAGE
RUN $APT_INSTALL prometheus wget ca-certificates && $APT_CLEAN \\
 && mkdir -p /prometheus && chown nobody:nogroup /prometheus
USER nobody
WORKDIR /prometheus
VOLUME ["/prometheus"]
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
EOF
  build "$PROM_IMAGE" "$ctx"
fi

log "images ready:"
for i in "$BASE_IMAGE" "$RUST_IMAGE" "$ZK_IMAGE" "$NGINX_IMAGE" "$PROM_IMAGE"; do
  $DOCKER image inspect -f "   $i {{.Size}}" "$i" | awk '{printf "   %-32s %6.0f MB\n", $1, $2/1e6}' >&2
done
