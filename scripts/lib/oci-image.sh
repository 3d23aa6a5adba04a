# Root filesystems and OCI image layouts for scripts/images, built without a
# container engine: the tree is staged in a directory, then umoci packs it
# as one layer and writes the image configuration. Sourced; needs $ROOT,
# $WORK, $SOURCE_DATE_EPOCH, $VERSION (or $IMAGE_VERSION), $REVISION and
# $SOURCE_URL.

# The unprivileged user every image runs as (distroless's "nonroot").
IMAGE_UID=65532

# stage_accounts DIR: root plus the nonroot user, neither with a login shell
# or a password, so container-hardening's account controls hold.
stage_accounts() {
  local dir="$1"
  install -d -m 0755 "$dir/etc"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n' \
    "$IMAGE_UID" "$IMAGE_UID" > "$dir/etc/passwd"
  printf 'root:x:0:\nnonroot:x:%d:\n' "$IMAGE_UID" > "$dir/etc/group"
  printf 'root:*:19000:0:99999:7:::\nnonroot:*:19000:0:99999:7:::\n' > "$dir/etc/shadow"
  chmod 0644 "$dir/etc/passwd" "$dir/etc/group"
  chmod 0640 "$dir/etc/shadow"
  install -d -m 0700 "$dir/root"
  install -d -m 0750 -o "$IMAGE_UID" -g "$IMAGE_UID" "$dir/home/nonroot"
}

# stage_base DIR: the skeleton every image shares: accounts, /tmp with the
# sticky bit, the standard bin directories, a restrictive umask for any
# shell (the debug scanner's busybox, or one added to debug an image), and
# the os-release of the Debian release the shared libraries come from (what
# vulnerability scanners match packages against).
stage_base() {
  local dir="$1"
  stage_accounts "$dir"
  printf 'umask 027\n' > "$dir/etc/profile"
  chmod 0644 "$dir/etc/profile"
  install -d -m 1777 "$dir/tmp"
  install -d -m 0755 "$dir/usr/bin" "$dir/usr/local/bin" "$dir/usr/lib/os-release.d"
  cp /usr/lib/os-release "$dir/usr/lib/os-release"
  ln -s ../usr/lib/os-release "$dir/etc/os-release"
}

# stage_libraries DIR BINARY: the shared libraries BINARY links (ldd), copied
# to the paths the loader looks them up by, and a dpkg status entry for each
# Debian package they come from, so a scanner knows their versions.
stage_libraries() {
  local dir="$1" binary="$2" lib pkg
  install -d -m 0755 "$dir/var/lib/dpkg/status.d"
  while read -r lib; do
    install -D -m 0755 "$(readlink -f "$lib")" "$dir$lib"
    pkg="$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null | head -n1 | cut -d: -f1)" || pkg=""
    [[ -z "$pkg" ]] && pkg="$(dpkg -S "$lib" 2>/dev/null | head -n1 | cut -d: -f1)" || true
    if [[ -n "$pkg" && ! -e "$dir/var/lib/dpkg/status.d/$pkg" ]]; then
      dpkg-query -s "$pkg" | grep -Ev '^(Conffiles|Description|Homepage| )' \
        > "$dir/var/lib/dpkg/status.d/$pkg"
      chmod 0644 "$dir/var/lib/dpkg/status.d/$pkg"
    fi
  done < <(ldd "$binary" | grep -oE '(/[^ ]+)' | sort -u)
}

# stage_program DIR PROGRAM STRIP: the program at /usr/local/bin/ (without
# symbols when STRIP is "strip") and the shared libraries it links.
stage_program() {
  local dir="$1" program="$2" strip="$3" target
  target="$dir/usr/local/bin/${program##*/}"
  install -m 0755 "$program" "$target"
  [[ "$strip" == strip ]] && strip --strip-unneeded "$target"
  if ldd "$program" >/dev/null 2>&1; then
    stage_libraries "$dir" "$program"
  fi
}

# stage_profiles DIR: the shipped compliance profiles, where the services'
# --profiles flag points in deploy/.
stage_profiles() {
  local dir="$1"
  install -d -m 0755 "$dir/usr/share/scanfleet"
  cp -r "$ROOT/profiles" "$dir/usr/share/scanfleet/profiles"
  find "$dir/usr/share/scanfleet" -type d -exec chmod 0755 {} +
  find "$dir/usr/share/scanfleet" -type f -exec chmod 0644 {} +
}

# stage_busybox DIR: Debian's static busybox with one link per applet: the
# debug scanner's shell, which runs the engine's one-round-trip script.
stage_busybox() {
  local dir="$1" applet
  install -d -m 0755 "$dir/bin"
  install -m 0755 /bin/busybox "$dir/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [[ -e "$dir/bin/$applet" ]] || ln -s busybox "$dir/bin/$applet"
  done
  install -d -m 0755 "$dir/var/lib/dpkg/status.d"
  dpkg-query -s busybox-static | grep -Ev '^(Conffiles|Description|Homepage| )' \
    > "$dir/var/lib/dpkg/status.d/busybox-static"
  chmod 0644 "$dir/var/lib/dpkg/status.d/busybox-static"
}

# pack_image LAYOUT TAG ROOTFS TITLE DESCRIPTION [ENTRYPOINT...]: ROOTFS
# (owned by root, every mtime set to SOURCE_DATE_EPOCH) as a one-layer
# image in the OCI layout LAYOUT under TAG, running as the nonroot user.
pack_image() {
  local layout="$1" tag="$2" rootfs="$3" title="$4" description="$5"
  shift 5
  local bundle="$WORK/bundle-$tag" created
  created="$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
  [[ -d "$layout" ]] || umoci init --layout "$layout"
  umoci new --image "$layout:$tag"
  umoci unpack --image "$layout:$tag" "$bundle" >/dev/null
  cp -a "$rootfs/." "$bundle/rootfs/"
  find "$bundle/rootfs" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  umoci repack --image "$layout:$tag" --history.created "$created" \
    --history.created_by "scripts/images" "$bundle"
  local entry=()
  for e in "$@"; do entry+=(--config.entrypoint "$e"); done
  umoci config --image "$layout:$tag" --created "$created" \
    --history.created "$created" --history.created_by "scripts/images config" \
    --author "scanfleet" --os linux --architecture amd64 \
    --config.user "$IMAGE_UID:$IMAGE_UID" --config.workingdir / \
    --clear config.env --config.env "PATH=/usr/local/bin:/usr/bin:/bin" \
    --clear config.cmd "${entry[@]}" \
    --config.label "org.opencontainers.image.title=$title" \
    --config.label "org.opencontainers.image.description=$description" \
    --config.label "org.opencontainers.image.source=$SOURCE_URL" \
    --config.label "org.opencontainers.image.revision=$REVISION" \
    --config.label "org.opencontainers.image.version=${IMAGE_VERSION:-$VERSION}" \
    --config.label "org.opencontainers.image.licenses=Apache-2.0" \
    --config.label "org.opencontainers.image.created=$created"
  umoci gc --layout "$layout"
  rm -rf "$bundle"
}

# layout_digest LAYOUT TAG: the manifest digest TAG names in LAYOUT.
layout_digest() {
  jq -r --arg tag "$2" \
    '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $tag) | .digest' \
    "$1/index.json"
}
