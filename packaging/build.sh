#!/bin/sh
# build.sh: the .deb and .rpm packages for every architecture, into
# $DIST (default dist/), from nfpm.yaml. `make package` runs it.
#
# Reproducible: CGO_ENABLED=0, -trimpath, no VCS stamping, and every mtime
# (files, man page, changelog, rpm build time) from SOURCE_DATE_EPOCH,
# which defaults to the last commit's time; two builds of one checkout
# give byte-identical packages (see dist/SHA256SUMS).
#
# Environment: NFPM (the nfpm binary; required), GO, DIST (where the
# packages go; the inputs nfpm.yaml names are always in dist/build), ARCHES
# ("amd64 arm64"), FORMATS ("deb rpm"), VERSION (the binary's version,
# default `git describe`), PKG_VERSION (default packaging/version.sh),
# PKG_RELEASE (default 1), PKG_CONFIG (the conffile's content, default
# config/testdata/example.yaml), SOURCE_DATE_EPOCH.
set -eu
cd "$(dirname "$0")/.."

: "${NFPM:?NFPM must name the nfpm binary}"
GO=${GO:-go}
DIST=${DIST:-dist}
ARCHES=${ARCHES:-amd64 arm64}
FORMATS=${FORMATS:-deb rpm}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
PKG_VERSION=${PKG_VERSION:-$(packaging/version.sh)}
PKG_RELEASE=${PKG_RELEASE:-1}
PKG_CONFIG=${PKG_CONFIG:-./config/testdata/example.yaml}
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
BUILD=dist/build # nfpm.yaml's sources
export PKG_VERSION PKG_RELEASE PKG_CONFIG SOURCE_DATE_EPOCH
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

rm -rf "$BUILD"
mkdir -p "$BUILD" "$DIST"
for f in "$DIST"/papyra-compact[_-]*.deb "$DIST"/papyra-compact-*.rpm "$DIST"/SHA256SUMS; do
    rm -f "$f"
done

for arch in $ARCHES; do
    echo ">> go build linux/$arch ($VERSION)"
    GOOS=linux GOARCH=$arch "$GO" build -trimpath -ldflags "-s -w -X main.version=$VERSION" \
        -o "$BUILD/$arch/papyra-compact" ./cmd/papyra-compact
done
host=$BUILD/$("$GO" env GOHOSTARCH)/papyra-compact
if [ ! -x "$host" ]; then
    host=$BUILD/host/papyra-compact
    "$GO" build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o "$host" ./cmd/papyra-compact
fi

# Every Go module linked into the binary must be in the copyright file.
missing=
for mod in $("$GO" version -m "$host" | awk '$1 == "dep" { print $2 }'); do
    base=$(printf '%s' "$mod" | sed 's|/v[0-9][0-9]*$||')
    grep -qF "$base/" packaging/copyright || missing="$missing $mod"
done
if [ -n "$missing" ]; then
    echo "packaging/copyright lacks the linked module(s):$missing" >&2
    exit 1
fi

echo ">> man page papyra-compact(1) from the --help text"
date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)
"$host" manpage --date "$date" | gzip -9n > "$BUILD/papyra-compact.1.gz"

# The changelog: packaging/changelog.yml, plus an entry for this build
# when it is not the newest listed version (a snapshot between tags).
full=$PKG_VERSION-$PKG_RELEASE
newest=$(awk '/^- semver:/ { print $3; exit }' packaging/changelog.yml)
{
    if [ "$newest" != "$full" ]; then
        cat <<ENTRY
- semver: $full
  date: $(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
  packager: $(sed -n 's/^maintainer: *//p' nfpm.yaml)
  deb: {urgency: medium, distributions: [unstable]}
  changes:
    - note: Snapshot build of $VERSION.
ENTRY
    fi
    grep -v -e '^#' -e '^\[\]$' packaging/changelog.yml || true
} > "$BUILD/changelog.yml"

for arch in $ARCHES; do
    for fmt in $FORMATS; do
        echo ">> nfpm $fmt $arch $full"
        GOARCH=$arch "$NFPM" package --config nfpm.yaml --packager "$fmt" --target "$DIST/"
    done
done
(cd "$DIST" && sha256sum papyra-compact[_-]*.deb papyra-compact-*.rpm 2>/dev/null > SHA256SUMS || true)
ls -l "$DIST"/papyra-compact[_-]*.deb "$DIST"/papyra-compact-*.rpm 2>/dev/null || true
