#!/bin/sh
# version.sh [DESCRIBE]: the package version (Debian and RPM) for a
# `git describe --tags --always --dirty` string (default: this checkout's).
#
#   v1.2.0                   -> 1.2.0
#   v1.2.0-rc1               -> 1.2.0~rc1           (sorts before 1.2.0)
#   v1.2.0-5-gabc1234        -> 1.2.0+git5.abc1234  (after 1.2.0, before 1.2.1)
#   v1.2.0-5-gabc1234-dirty  -> 1.2.0+git5.abc1234.dirty
#   abc1234 (no tag)         -> 0.0.0+gitN.abc1234  (N: commits in HEAD)
#
# The result holds only [0-9A-Za-z.+~], valid as a Debian upstream
# version and as an RPM Version (no "-").
set -eu

d=${1:-$(git describe --tags --always --dirty 2>/dev/null || echo unknown)}

dirty=
case $d in *-dirty) dirty=.dirty; d=${d%-dirty} ;; esac

if expr "$d" : '.*-[0-9][0-9]*-g[0-9a-f][0-9a-f]*$' >/dev/null; then
    # TAG-N-gHASH
    hash=${d##*-g}; rest=${d%-g*}; n=${rest##*-}; tag=${rest%-*}
    snap=+git$n.$hash
elif expr "$d" : '[0-9a-f][0-9a-f]*$' >/dev/null && ! expr "$d" : 'v\{0,1\}[0-9][0-9]*\.' >/dev/null; then
    # no tag at all: a bare abbreviated hash
    n=$(git rev-list --count HEAD 2>/dev/null || echo 0)
    tag=0.0.0; snap=+git$n.$d
else
    tag=$d; snap=
fi

v=${tag#v}
# A pre-release tag (1.2.0-rc1) sorts before its release: "-" -> "~".
v=$(printf '%s' "$v" | tr '-' '~')
v=$v$snap$dirty
# Anything else Debian or RPM would reject becomes ".".
v=$(printf '%s' "$v" | tr -c '0-9A-Za-z.+~' '.')
case $v in [0-9]*) ;; *) v=0.0.0+$v ;; esac
printf '%s\n' "$v"
