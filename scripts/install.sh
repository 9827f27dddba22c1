#!/usr/bin/env bash
# Installs the C library the way C programs expect it:
#   $PREFIX/include/tbsecrets.h
#   $PREFIX/lib/libtbsecrets.so.<version>, libtbsecrets.so.0 (the SONAME), libtbsecrets.so
#   $PREFIX/lib/libtbsecrets.a
#   $PREFIX/lib/pkgconfig/tbsecrets.pc, tbsecrets-static.pc
# then a program builds with `cc app.c $(pkg-config --cflags --libs tbsecrets)` (shared) or
# `cc app.c $(pkg-config --cflags --libs tbsecrets-static)` (static); see README.md, "Build and
# link".
#
# Usage: PREFIX=/usr/local scripts/install.sh
# Environment:
#   PREFIX        install root (default /usr/local); LIBDIR, INCLUDEDIR, PKGCONFIGDIR override
#                 its parts (default $PREFIX/lib, $PREFIX/include, $LIBDIR/pkgconfig)
#   DESTDIR       staging root prepended to every path written (packagers); the .pc files
#                 still name PREFIX
#   FEATURES      Cargo features of the build (default: ffi, the C ABI alone: no TLS, no
#                 tokio, no JNI)
#   TBS_LIB_DIR   a directory already holding libtbsecrets.so and libtbsecrets.a: install
#                 those instead of building (the tests use this)
set -euo pipefail
cd "$(dirname "$0")/.."

PREFIX=${PREFIX:-/usr/local}
LIBDIR=${LIBDIR:-$PREFIX/lib}
INCLUDEDIR=${INCLUDEDIR:-$PREFIX/include}
PKGCONFIGDIR=${PKGCONFIGDIR:-$LIBDIR/pkgconfig}
DESTDIR=${DESTDIR:-}
FEATURES=${FEATURES:-ffi}
# The number in the SONAME; build.rs sets the same (SONAME_MAJOR).
SONAME_MAJOR=0

if [ -z "${TBS_LIB_DIR:-}" ]; then
    cargo build --release --locked --lib --no-default-features --features "$FEATURES"
    TBS_LIB_DIR=${CARGO_TARGET_DIR:-target}/release
fi
for f in libtbsecrets.so libtbsecrets.a; do
    [ -f "$TBS_LIB_DIR/$f" ] || { echo "install.sh: $TBS_LIB_DIR/$f not found" >&2; exit 1; }
done
version=$(sed -n 's/^version = "\([^"]*\)"$/\1/p' Cargo.toml | head -n 1)
[ -n "$version" ] || { echo "install.sh: no version in Cargo.toml" >&2; exit 1; }

lib=$DESTDIR$LIBDIR
install -d "$DESTDIR$INCLUDEDIR" "$lib" "$DESTDIR$PKGCONFIGDIR"
install -m 0644 include/tbsecrets.h "$DESTDIR$INCLUDEDIR/tbsecrets.h"
install -m 0755 "$TBS_LIB_DIR/libtbsecrets.so" "$lib/libtbsecrets.so.$version"
ln -sfn "libtbsecrets.so.$version" "$lib/libtbsecrets.so.$SONAME_MAJOR"
ln -sfn "libtbsecrets.so.$SONAME_MAJOR" "$lib/libtbsecrets.so"
install -m 0644 "$TBS_LIB_DIR/libtbsecrets.a" "$lib/libtbsecrets.a"
for pc in tbsecrets tbsecrets-static; do
    sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@LIBDIR@|$LIBDIR|g" -e "s|@INCLUDEDIR@|$INCLUDEDIR|g" \
        -e "s|@VERSION@|$version|g" "$pc.pc.in" >"$DESTDIR$PKGCONFIGDIR/$pc.pc"
    chmod 0644 "$DESTDIR$PKGCONFIGDIR/$pc.pc"
done
echo "installed tbsecrets $version into ${DESTDIR}$PREFIX"
