#!/usr/bin/env bash
# Real game art for the recall tests (tests/art.py): the character portraits (RGBA) and story
# paintings of Debian's wesnoth-1.16-data, fetched with `apt-get download` and unpacked without
# installing anything. Only the two folders the tests read are extracted (about 48 MB).
#
# Cache: $CLEARHOUSE_TEST_ART (default ~/.cache/clearhouse-test-art). A .deb already fetched by
# bench/prepare_catalog.py ($CLEARHOUSE_BENCH_CACHE, default ~/.cache/clearhouse-bench) is reused.
# Never fails the build: when the package cannot be fetched it says so loudly, and the tests
# that need the art are skipped with the same loud line.
set -u
PKG=wesnoth-1.16-data
CACHE="${CLEARHOUSE_TEST_ART:-$HOME/.cache/clearhouse-test-art}"
BENCH="${CLEARHOUSE_BENCH_CACHE:-$HOME/.cache/clearhouse-bench}"
DONE="$CACHE/$PKG/.complete"
WANTED=(./usr/share/games/wesnoth/1.16/data/core/images/portraits
        ./usr/share/games/wesnoth/1.16/data/core/images/story)

[ -f "$DONE" ] && exit 0
mkdir -p "$CACHE/debs"
deb=$(ls "$CACHE"/debs/${PKG}_*.deb "$BENCH"/debs/${PKG}_*.deb 2>/dev/null | head -n 1)
if [ -z "$deb" ]; then
  echo "fetching $PKG (apt-get download, about 146 MB) into $CACHE ..."
  (cd "$CACHE/debs" && apt-get download -q "$PKG" >/dev/null 2>&1)
  deb=$(ls "$CACHE"/debs/${PKG}_*.deb 2>/dev/null | head -n 1)
fi
if [ -z "$deb" ]; then
  echo "!!! cannot fetch $PKG with apt-get download: the game-art recall tests will be SKIPPED !!!"
  exit 0
fi
tmp=$(mktemp -d "$CACHE/.unpack.XXXXXX")
if dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" "${WANTED[@]}"; then
  rm -rf "${CACHE:?}/$PKG"
  mkdir -p "$CACHE/$PKG"
  mv "$tmp/usr/share/games/wesnoth/1.16/data/core/images/portraits" "$CACHE/$PKG/"
  mv "$tmp/usr/share/games/wesnoth/1.16/data/core/images/story" "$CACHE/$PKG/"
  basename "$deb" > "$DONE"
  echo "game art ready: $CACHE/$PKG"
else
  echo "!!! cannot unpack $deb: the game-art recall tests will be SKIPPED !!!"
fi
rm -rf "$tmp"
exit 0
