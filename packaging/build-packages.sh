#!/usr/bin/env bash
# Build the agent's .deb (dpkg-deb) and .rpm (rpmbuild) into dist/.
#
# Only agent/ and rules/ are packaged (never server/), into /usr/lib/canhgac-agent,
# with /usr/bin/canhgac-agent a launcher that puts that directory first on sys.path;
# the Python modules come from the distribution (Depends / Requires). The systemd
# units are whatever packaging/systemd/canhgac-agent* holds, with ExecStart pointing
# at /usr/bin. Usage: packaging/build-packages.sh [deb|rpm|all] (default all).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WHAT=${1:-all}
DIST=${DIST:-$ROOT/dist}  # the tests build into a directory of their own
WORK=$(mktemp -d "${TMPDIR:-/tmp}/canhgac-packages.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$DIST"
# Everything comes from the committed tree (git archive): a consistent snapshot of
# code, units and package files, never caches, local leftovers or half-done edits of
# the working tree. REF=<commit> picks another commit.
REF=${REF:-HEAD}
git -C "$ROOT" archive --format=tar "$REF" agent rules packaging pyproject.toml \
    | (mkdir "$WORK/src" && tar -x -C "$WORK/src")
cd "$WORK/src"
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -n 1)
[ -n "$VERSION" ] || { echo "no version in pyproject.toml" >&2; exit 1; }

# stage DEST UNITDIR: the installed tree, shared by both formats.
stage() {
    local dest=$1 unitdir=$2
    install -d "$dest/usr/lib/canhgac-agent" "$dest/usr/bin" "$dest/etc/canhgac" "$dest$unitdir"
    cp -r agent rules "$dest/usr/lib/canhgac-agent/"
    install -m 0755 packaging/deb/canhgac-agent.launcher "$dest/usr/bin/canhgac-agent"
    # No secret in it (the token lives in the state directory): readable like any config.
    install -m 0644 packaging/deb/agent.yaml "$dest/etc/canhgac/agent.yaml"
    # canhgac-agent.service (the daemon), .timer and -once.service (the timer's alternative)
    for unit in packaging/systemd/canhgac-agent*; do
        sed 's#/usr/local/bin/canhgac-agent#/usr/bin/canhgac-agent#g' "$unit" \
            >"$dest$unitdir/$(basename "$unit")"
        chmod 0644 "$dest$unitdir/$(basename "$unit")"
    done
    find "$dest/usr/lib/canhgac-agent" -type d -exec chmod 0755 {} +
    find "$dest/usr/lib/canhgac-agent" -type f -exec chmod 0644 {} +
}

build_deb() {
    command -v dpkg-deb >/dev/null || { echo "dpkg-deb is needed (Debian: dpkg)" >&2; exit 1; }
    local tree=$WORK/deb
    # Debian 12 keeps units in /lib/systemd/system (dpkg does not know /usr/lib aliases).
    stage "$tree" /lib/systemd/system
    install -d "$tree/DEBIAN"
    sed "s/@VERSION@/$VERSION/" packaging/deb/control.in >"$tree/DEBIAN/control"
    echo /etc/canhgac/agent.yaml >"$tree/DEBIAN/conffiles"
    # Debian policy: the copyright file and a changelog in the package's doc directory.
    install -d "$tree/usr/share/doc/canhgac-agent"
    install -m 0644 packaging/deb/copyright "$tree/usr/share/doc/canhgac-agent/copyright"
    printf 'canhgac-agent (%s) stable; urgency=medium\n\n  * Built from %s.\n\n -- %s  %s\n' \
        "$VERSION" "$(git -C "$ROOT" rev-parse --short "$REF")" \
        "$(sed -n 's/^Maintainer: //p' packaging/deb/control.in)" \
        "$(date -R -d "@$(git -C "$ROOT" log -1 --format=%ct "$REF")")" \
        | gzip -9n >"$tree/usr/share/doc/canhgac-agent/changelog.gz"
    chmod 0644 "$tree/usr/share/doc/canhgac-agent/changelog.gz"
    for script in postinst prerm postrm; do
        install -m 0755 "packaging/deb/$script" "$tree/DEBIAN/$script"
    done
    dpkg-deb --root-owner-group -Zxz --build "$tree" "$DIST/canhgac-agent_${VERSION}_all.deb" >/dev/null
    echo "$DIST/canhgac-agent_${VERSION}_all.deb"
}

build_rpm() {
    command -v rpmbuild >/dev/null || { echo "rpmbuild is needed (Debian: apt-get install rpm)" >&2; exit 1; }
    local tree=$WORK/rpm-stage
    stage "$tree" /usr/lib/systemd/system
    rpmbuild -bb --quiet \
        --define "_topdir $WORK/rpmbuild" \
        --define "_rpmdir $DIST" \
        --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
        --define "version $VERSION" \
        --define "stage $tree" \
        packaging/rpm/canhgac-agent.spec >/dev/null
    echo "$DIST/canhgac-agent-${VERSION}-1.noarch.rpm"
}

case $WHAT in
    deb) build_deb ;;
    rpm) build_rpm ;;
    all) build_deb; build_rpm ;;
    *) echo "usage: $0 [deb|rpm|all]" >&2; exit 2 ;;
esac
