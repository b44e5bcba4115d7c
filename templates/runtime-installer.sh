#!/bin/sh
# krun's node-side runtime installer (`krun runtime install|uninstall`). POSIX sh.
#
#   runtime-installer.sh install|revert ROOT
#
# ROOT is the host's root directory as this container sees it (/host in the installer Job, a temporary directory in
# tests). Every decision was made by krun outside the cluster and arrives in the environment; this script never asks
# the Kubernetes API anything and holds no token:
#
#   KRUN_RUNTIME        runtime name (kontain), used in backup and state names
#   KRUN_HANDLER        the CRI runtime name (krun)
#   KRUN_METHOD         containerd-config | containerd-dropin | crio-dropin
#   KRUN_CONFIG         containerd's main config (/etc/containerd/config.toml); containerd methods
#   KRUN_DROPIN         the file to write; drop-in methods
#   KRUN_CONFIG_VERSION containerd config version for a config.toml that doesn't exist yet (2 for 1.x, 3 for 2.x)
#   KRUN_RUNTIME_TABLE  the body (key = value lines) of containerd's runtimes.<handler> table
#   KRUN_CRIO_DROPIN    the CRI-O drop-in's whole content
#   KRUN_UNIT           the systemd unit to restart (containerd, crio)
#   KRUN_ARTIFACTS      the directory holding the runtime's artifacts in this container
#   KRUN_INSTALL        space-separated FROM:TO pairs; FROM under KRUN_ARTIFACTS (a trailing / copies a directory's
#                       content), TO an absolute host path
#   KRUN_SYSTEMCTL      the service manager command (default: chroot ROOT systemctl)
#
# containerd's config.toml is backed up once, to config.toml.krun-RUNTIME.bak, before the first change. Every install
# starts again from that backup, so re-running it is idempotent, and revert puts the backup back.
set -eu

ACTION=${1:-}
ROOT=${2:-}
log() { printf 'krun-installer: %s\n' "$*"; }
fail() {
  printf 'krun-installer: error: %s\n' "$*" >&2
  exit 1
}
need() { eval "[ -n \"\${$1:-}\" ]" || fail "$1 is not set (krun passes it; was the script run by hand?)"; }

case "$ACTION" in install | revert) ;; *) fail "usage: $0 install|revert ROOT" ;; esac
[ -n "$ROOT" ] && [ -d "$ROOT" ] || fail "ROOT \"$ROOT\" is not a directory"
ROOT=${ROOT%/}
need KRUN_RUNTIME
need KRUN_HANDLER
need KRUN_METHOD
need KRUN_UNIT
STATE="$ROOT/var/lib/krun/runtimes/$KRUN_RUNTIME"
FILES="$STATE/files"

# --- containerd config helpers ------------------------------------------------------------------------------------

# The top-level `version = N` of a config file (before its first table), or nothing.
config_version() {
  awk '/^[[:space:]]*\[/ { exit } /^[[:space:]]*version[[:space:]]*=/ { sub(/^[^=]*=[[:space:]]*/, ""); sub(/[^0-9].*$/, ""); print; exit }' "$1"
}

plugin_id() {
  case "$1" in
    1) echo 'cri' ;;
    2) echo '"io.containerd.grpc.v1.cri"' ;;
    3) echo '"io.containerd.cri.v1.runtime"' ;;
    *) fail "containerd config version \"$1\" is unknown to krun (expected 1, 2 or 3)" ;;
  esac
}

# Prints file $1 without table $2 and its subtables (headers compared with whitespace removed).
strip_table() {
  awk -v t="$2" '
    /^[[:space:]]*\[/ {
      h = $0; gsub(/[[:space:]]/, "", h); sub(/#.*$/, "", h)
      name = h; gsub(/^\[+|\]+$/, "", name)
      skip = (name == t || index(name, t ".") == 1)
    }
    !skip { print }
  ' "$1"
}

runtime_table() { # plugin id
  printf '[plugins.%s.containerd.runtimes.%s]\n%s\n' "$1" "$KRUN_HANDLER" "$KRUN_RUNTIME_TABLE"
}

# Writes stdin to $1 atomically (a temporary file beside it, then rename), keeping the old file's mode.
write_file() {
  mkdir -p "$(dirname "$1")"
  cat >"$1.krun-tmp"
  if [ -e "$1" ]; then chmod "$(stat -c %a "$1")" "$1.krun-tmp"; fi
  mv -f "$1.krun-tmp" "$1"
}

backup_config() { # config
  if [ -e "$1.krun-$KRUN_RUNTIME.bak" ] || [ -e "$1.krun-$KRUN_RUNTIME.absent" ]; then
    log "keeping the backup of $CONFIG_NAME from the first install"
  elif [ -e "$1" ]; then
    cp -p "$1" "$1.krun-$KRUN_RUNTIME.bak"
    log "backed up $CONFIG_NAME to $CONFIG_NAME.krun-$KRUN_RUNTIME.bak"
  else
    mkdir -p "$(dirname "$1")"
    : >"$1.krun-$KRUN_RUNTIME.absent"
    log "$CONFIG_NAME doesn't exist; revert will remove it"
  fi
}

# The config as it was before krun: the backup, or nothing.
original_config() { # config
  if [ -e "$1.krun-$KRUN_RUNTIME.bak" ]; then cat "$1.krun-$KRUN_RUNTIME.bak"; fi
}

restore_config() { # config
  if [ -e "$1.krun-$KRUN_RUNTIME.bak" ]; then
    mv -f "$1.krun-$KRUN_RUNTIME.bak" "$1"
    log "restored $CONFIG_NAME from its backup"
  elif [ -e "$1.krun-$KRUN_RUNTIME.absent" ]; then
    rm -f "$1" "$1.krun-$KRUN_RUNTIME.absent"
    log "removed $CONFIG_NAME (it didn't exist before krun)"
  else
    log "no backup of $CONFIG_NAME; leaving it as it is"
  fi
}

# --- the steps ----------------------------------------------------------------------------------------------------

# mkdir -p, remembering the topmost directory it created, so revert removes exactly what install made.
make_dirs() { # host path
  [ ! -d "$ROOT$1" ] || return 0
  top=$1
  while [ ! -d "$ROOT$(dirname "$top")" ]; do top=$(dirname "$top"); done
  mkdir -p "$ROOT$1"
  echo "$top" >>"$STATE/dirs"
}

install_artifacts() {
  [ -n "${KRUN_INSTALL:-}" ] || return 0
  need KRUN_ARTIFACTS
  mkdir -p "$STATE"
  : >"$FILES.krun-tmp"
  [ -f "$STATE/dirs" ] || : >"$STATE/dirs"
  for pair in $KRUN_INSTALL; do
    from=${pair%%:*}
    to=${pair#*:}
    case "$from" in
      */)
        [ -d "$KRUN_ARTIFACTS/$from" ] || fail "artifact directory $KRUN_ARTIFACTS/$from is missing"
        make_dirs "${to%/}"
        (cd "$KRUN_ARTIFACTS/$from" && find . -type f) >"$STATE/list"
        while read -r rel; do
          rel=${rel#./}
          make_dirs "$(dirname "$to$rel")"
          cp -p "$KRUN_ARTIFACTS/$from$rel" "$ROOT$to$rel.krun-tmp"
          mv -f "$ROOT$to$rel.krun-tmp" "$ROOT$to$rel"
          echo "$to$rel" >>"$FILES.krun-tmp"
        done <"$STATE/list"
        rm -f "$STATE/list"
        ;;
      *)
        [ -f "$KRUN_ARTIFACTS/$from" ] || fail "artifact $KRUN_ARTIFACTS/$from is missing"
        make_dirs "$(dirname "$to")"
        cp -p "$KRUN_ARTIFACTS/$from" "$ROOT$to.krun-tmp"
        mv -f "$ROOT$to.krun-tmp" "$ROOT$to"
        echo "$to" >>"$FILES.krun-tmp"
        ;;
    esac
    log "installed $from to $to"
  done
  mv -f "$FILES.krun-tmp" "$FILES"
}

# Removes the files install copied, and the directories it created (once empty).
remove_artifacts() {
  [ -f "$FILES" ] || return 0
  while read -r file; do
    rm -f "$ROOT$file"
  done <"$FILES"
  if [ -f "$STATE/dirs" ]; then
    while read -r dir; do
      [ ! -d "$ROOT$dir" ] || find "$ROOT$dir" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    done <"$STATE/dirs"
  fi
  rm -f "$FILES" "$STATE/dirs"
  for d in "$STATE" "$ROOT/var/lib/krun/runtimes" "$ROOT/var/lib/krun"; do rmdir "$d" 2>/dev/null || true; done
  log "removed the $KRUN_RUNTIME artifacts"
}

configure_containerd_config() {
  need KRUN_CONFIG
  need KRUN_RUNTIME_TABLE
  config="$ROOT$KRUN_CONFIG"
  backup_config "$config"
  original_config "$config" >"$config.krun-base"
  version=$(config_version "$config.krun-base")
  if [ -z "$version" ]; then
    if [ -s "$config.krun-base" ]; then version=1; else version=${KRUN_CONFIG_VERSION:-2}; fi
  fi
  [ "$version" != 3 ] || fail "$CONFIG_NAME is a version 3 (containerd 2.x) config, but the node reported containerd 1.x: re-run krun runtime plan"
  id=$(plugin_id "$version")
  table="plugins.$id.containerd.runtimes.$KRUN_HANDLER"
  {
    if [ ! -s "$config.krun-base" ]; then printf 'version = %s\n' "$version"; fi
    strip_table "$config.krun-base" "$table"
    printf '\n# Added by krun runtime install %s; krun runtime uninstall %s restores the backup.\n' "$KRUN_RUNTIME" "$KRUN_RUNTIME"
    runtime_table "$id"
  } >"$config.krun-new"
  write_file "$config" <"$config.krun-new"
  rm -f "$config.krun-base" "$config.krun-new"
  log "added [$table] to $CONFIG_NAME (config version $version)"
}

configure_containerd_dropin() {
  need KRUN_CONFIG
  need KRUN_DROPIN
  need KRUN_RUNTIME_TABLE
  config="$ROOT$KRUN_CONFIG"
  backup_config "$config"
  original_config "$config" >"$config.krun-base"
  version=$(config_version "$config.krun-base")
  if [ -z "$version" ]; then
    if [ -s "$config.krun-base" ]; then version=1; else version=${KRUN_CONFIG_VERSION:-3}; fi
  fi
  [ "$version" != 1 ] || fail "$CONFIG_NAME is a version 1 config, which containerd 2.x can't read"
  id=$(plugin_id "$version")
  {
    printf '# Written by krun runtime install %s; removed by krun runtime uninstall %s.\nversion = %s\n\n' "$KRUN_RUNTIME" "$KRUN_RUNTIME" "$version"
    runtime_table "$id"
  } >"$config.krun-new"
  write_file "$ROOT$KRUN_DROPIN" <"$config.krun-new"
  rm -f "$config.krun-new"
  log "wrote $KRUN_DROPIN (config version $version)"
  # The import: relative to config.toml's directory when the drop-in is below it (containerd resolves relative imports
  # against the importing file), so the same text works wherever the root is mounted.
  dir=$(dirname "$KRUN_CONFIG")
  case "$KRUN_DROPIN" in "$dir"/*) import=${KRUN_DROPIN#"$dir"/} ;; *) import=$KRUN_DROPIN ;; esac
  dropin_dir=$(dirname "$KRUN_DROPIN")
  if grep -qF -e "\"$KRUN_DROPIN\"" -e "\"$import\"" -e "\"$dropin_dir/*.toml\"" -e "\"$dropin_dir/*\"" "$config.krun-base"; then
    log "$CONFIG_NAME already imports $KRUN_DROPIN"
    write_file "$config" <"$config.krun-base"
  elif grep -q '^[[:space:]]*imports[[:space:]]*=[[:space:]]*\[' "$config.krun-base"; then
    awk -v p="\"$import\", " '!done && /^[[:space:]]*imports[[:space:]]*=[[:space:]]*\[/ { sub(/\[/, "[" p); done = 1 } { print }' "$config.krun-base" >"$config.krun-new"
    write_file "$config" <"$config.krun-new"
    rm -f "$config.krun-new"
    log "added $import to the imports of $CONFIG_NAME"
  else
    # Top-level keys must come before the first table: right after `version`, or first.
    awk -v line="imports = [\"$import\"]" '
      !done && /^[[:space:]]*version[[:space:]]*=/ { print; print line; done = 1; next }
      !done && /^[[:space:]]*\[/ { print line; done = 1 }
      { print }
      END { if (!done) print line }
    ' "$config.krun-base" >"$config.krun-body"
    if [ -s "$config.krun-base" ]; then
      write_file "$config" <"$config.krun-body"
    else
      printf 'version = %s\n%s\n' "$version" "imports = [\"$import\"]" | write_file "$config"
    fi
    rm -f "$config.krun-body"
    log "made $CONFIG_NAME import $import"
  fi
  rm -f "$config.krun-base"
}

configure_crio() {
  need KRUN_DROPIN
  need KRUN_CRIO_DROPIN
  mkdir -p "$(dirname "$ROOT$KRUN_DROPIN")"
  printf '%s' "$KRUN_CRIO_DROPIN" >"$ROOT$KRUN_DROPIN.krun-new"
  mv -f "$ROOT$KRUN_DROPIN.krun-new" "$ROOT$KRUN_DROPIN"
  log "wrote $KRUN_DROPIN"
}

restart_unit() {
  if [ -n "${KRUN_SYSTEMCTL:-}" ]; then
    # shellcheck disable=SC2086 # a command with its arguments
    $KRUN_SYSTEMCTL restart "$KRUN_UNIT" || fail "restarting $KRUN_UNIT failed"
  else
    chroot "$ROOT" systemctl restart "$KRUN_UNIT" || fail "restarting $KRUN_UNIT failed"
  fi
  log "restarted $KRUN_UNIT"
}

CONFIG_NAME=${KRUN_CONFIG:-}
# Steps on separate lines: `set -e` doesn't apply inside the left side of && lists.
case "$ACTION:$KRUN_METHOD" in
  install:containerd-config)
    install_artifacts
    configure_containerd_config
    ;;
  install:containerd-dropin)
    install_artifacts
    configure_containerd_dropin
    ;;
  install:crio-dropin)
    install_artifacts
    configure_crio
    ;;
  revert:containerd-config)
    restore_config "$ROOT$KRUN_CONFIG"
    remove_artifacts
    ;;
  revert:containerd-dropin)
    restore_config "$ROOT$KRUN_CONFIG"
    rm -f "$ROOT$KRUN_DROPIN"
    log "removed $KRUN_DROPIN"
    remove_artifacts
    ;;
  revert:crio-dropin)
    rm -f "$ROOT$KRUN_DROPIN"
    log "removed $KRUN_DROPIN"
    remove_artifacts
    ;;
  *) fail "unknown KRUN_METHOD \"$KRUN_METHOD\"" ;;
esac
restart_unit
log "$ACTION of $KRUN_RUNTIME done"
