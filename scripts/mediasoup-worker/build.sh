#!/usr/bin/env bash
# Produces a mediasoup-worker binary without PyPI or GitHub (see README.md beside this file) and
# links it where mediasoup's Node lib looks for it by default.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

ms_dir="node_modules/mediasoup"
# mediasoup's Node lib spawns this path when MEDIASOUP_WORKER_BIN is unset.
link_path="$ms_dir/worker/out/Release/mediasoup-worker"

die() {
  echo "mediasoup-worker: $*" >&2
  exit 1
}

link() {
  mkdir -p "$(dirname "$link_path")"
  ln -sfn "$1" "$link_path"
  echo "mediasoup-worker: $1 ($2)"
}

# A worker run without MEDIASOUP_VERSION in its environment exits 41 (worker/src/main.cpp); any
# other status means it cannot run here (missing shared library, wrong libc or architecture).
runs_here() {
  local status=0
  env -i "$1" </dev/null >/dev/null 2>&1 || status=$?
  [ "$status" -eq 41 ]
}

if [ -n "${MEDIASOUP_WORKER_BIN:-}" ]; then
  [ -f "$MEDIASOUP_WORKER_BIN" ] && [ -x "$MEDIASOUP_WORKER_BIN" ] ||
    die "MEDIASOUP_WORKER_BIN=$MEDIASOUP_WORKER_BIN does not exist or is not executable"
  link "$(realpath "$MEDIASOUP_WORKER_BIN")" env
  exit 0
fi

[ -f "$ms_dir/package.json" ] || die "$ms_dir is not installed: run npm ci first"
version="$(node -p "require('./$ms_dir/package.json').version")"
# The key changes with the mediasoup version and with any file of the patch material (not the README).
hash="$(cd "$here" && find . -type f ! -name README.md -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12)"
cache_dir="$(realpath -m "${MEDIASOUP_WORKER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/moderating-sfu/mediasoup-worker}/$version-$hash")"
bin="$cache_dir/mediasoup-worker"

if [ -x "$bin" ] && runs_here "$bin"; then
  link "$bin" cached
  exit 0
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/mediasoup-worker-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# Store into the cache atomically: a concurrent or interrupted run never sees a partial binary.
store() {
  mkdir -p "$cache_dir"
  cp "$1" "$bin.tmp.$$"
  chmod 755 "$bin.tmp.$$"
  mv -f "$bin.tmp.$$" "$bin"
}

# mediasoup's postinstall tries this first too; here (no GitHub access) it fails within 20 s.
if [ -z "${MEDIASOUP_SKIP_WORKER_PREBUILT_DOWNLOAD:-}" ]; then
  if node "$here/prebuilt.mjs" "$work/prebuilt.tgz" &&
    mkdir -p "$work/prebuilt" && tar -xzf "$work/prebuilt.tgz" -C "$work/prebuilt" &&
    runs_here "$work/prebuilt/mediasoup-worker"; then
    store "$work/prebuilt/mediasoup-worker"
    link "$bin" prebuilt
    exit 0
  fi
  echo "mediasoup-worker: no usable prebuilt binary, building from node_modules/mediasoup/worker"
fi

# Offline build with Debian's toolchain and libraries instead of pip's meson/ninja and meson's
# downloaded subprojects. python3-invoke is not needed: meson and ninja are driven directly.
packages=(meson ninja-build g++ pkg-config patch libuv1-dev libssl-dev libsrtp2-dev libabsl-dev
  libflatbuffers-dev flatbuffers-compiler)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "mediasoup-worker: missing Debian build packages: ${missing[*]}" >&2
  echo "  apt-get install -y ${packages[*]}" >&2
  exit 1
fi

start=$SECONDS
# A copy: node_modules stays pristine. out/ may hold the link made by an earlier run.
cp -a "$ms_dir/worker" "$work/worker"
rm -rf "$work/worker/out"
patch -d "$work/worker" -p1 -s --no-backup-if-mismatch <"$here/worker.patch"

# Each overlay replaces a subproject by a meson.build declaring the Debian library. It goes in the
# directory the .wrap names: meson uses an existing subproject directory as is, and the wrap's
# [provide] section still maps dependency names (e.g. unordered_dense) to it.
for overlay in "$here"/subprojects/*/; do
  name="$(basename "$overlay")"
  wrap="$work/worker/subprojects/$name.wrap"
  [ -f "$wrap" ] || die "worker/subprojects/$name.wrap not found: the overlays need updating for mediasoup $version"
  dir="$(sed -n 's/^directory *= *//p' "$wrap")"
  rm -rf "$work/worker/subprojects/${dir:-$name}"
  cp -r "$overlay" "$work/worker/subprojects/${dir:-$name}"
done

# libsrtp on OpenSSL. Debian's libsrtp2 is built on NSS, whose per-call overhead (PK11 contexts,
# locks, hash lookups) took about 28 % of the worker's CPU when forwarding to 300 viewers (perf).
# So Debian's own source of the installed version is fetched with apt (a private source list and
# state under $work: the system's apt configuration is not touched) and built as a static library
# on OpenSSL (about 6 s). Where no source can be had the worker links Debian's NSS build, and says so.
srtp_static=false
srtp_crypto="Debian's libsrtp2 (NSS)"
build_srtp_on_openssl() {
  local apt_dir="$work/apt" version
  version="$(dpkg-query -W -f='${source:Version}' libsrtp2-dev)"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/parts" "$apt_dir/src"
  # the system's binary sources, as source sources (deb822 .sources files and one-line lists)
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && sed 's/^Types:.*$/Types: deb-src/' "$f" >"$apt_dir/parts/$(basename "$f")"
  done
  : >"$apt_dir/sources.list"
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] && sed -n 's/^deb \(.*\)$/deb-src \1/p' "$f" >>"$apt_dir/sources.list"
  done
  local apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=$apt_dir/parts"
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
    -o "APT::Sandbox::User=root" -o "Acquire::Retries=2" -qq)
  # apt checks what it downloads against the signed Sources index
  timeout 180 apt-get "${apt_opts[@]}" update >"$apt_dir/update.log" 2>&1 &&
    (cd "$apt_dir/src" && timeout 180 apt-get "${apt_opts[@]}" source --download-only "libsrtp2=$version") \
      >"$apt_dir/source.log" 2>&1 || {
    echo "mediasoup-worker: no source of libsrtp2 $version from the Debian mirror ($(tail -1 "$apt_dir/source.log" 2>/dev/null || tail -1 "$apt_dir/update.log"))" >&2
    return 1
  }
  local orig
  orig="$(ls "$apt_dir/src"/libsrtp2_*.orig.tar.* 2>/dev/null | head -1)"
  [ -n "$orig" ] || return 1
  mkdir -p "$work/srtp-src"
  tar -xf "$orig" -C "$work/srtp-src" --strip-components=1 || return 1
  (cd "$work/srtp-src" &&
    ./configure --enable-openssl --prefix="$work/srtp" CFLAGS="-O2 -fPIC" >"$work/srtp-configure.log" 2>&1 &&
    nice -n 10 make -j"$(nproc)" libsrtp2.a >"$work/srtp-make.log" 2>&1 &&
    make install >>"$work/srtp-make.log" 2>&1) || {
    echo "mediasoup-worker: libsrtp2 $version on OpenSSL did not build (logs: $work/srtp-*.log)" >&2
    return 1
  }
  srtp_crypto="libsrtp2 $version built on OpenSSL"
}
if build_srtp_on_openssl; then
  srtp_static=true
  export PKG_CONFIG_PATH="$work/srtp/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
else
  echo "mediasoup-worker: linking Debian's libsrtp2 (NSS crypto: about a quarter more worker CPU per packet)" >&2
fi

# The options tasks.py passes for a Release build; tests, fuzzer and downloads off. The compile
# (261 steps) took about 6 min on 2 cores at nice 10.
meson setup "$work/build" "$work/worker" \
  --buildtype release -Db_ndebug=true --wrap-mode=nodownload \
  -Dms_build_tests=false -Dms_build_fuzzer=false -Dlibsrtp3:static="$srtp_static" \
  >"$work/meson-setup.log" 2>&1 ||
  { cat "$work/meson-setup.log" >&2; die "meson setup failed"; }
nice -n 10 ninja -C "$work/build" -j"$(nproc)" mediasoup-worker

runs_here "$work/build/mediasoup-worker" || die "the built binary does not run"
store "$work/build/mediasoup-worker"
echo "mediasoup-worker: built in $((SECONDS - start)) s, SRTP by $srtp_crypto"
link "$bin" built
