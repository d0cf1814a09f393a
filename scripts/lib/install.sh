# Sourced by scripts/test and scripts/bench: installs what they need and is missing.
#   install_packages PKG…   Debian packages, without starting any service they ship (dockerd,
#                           registry:2 on :5000, nginx on :80, slapd, Debian's PostgreSQL);
#   install_garage          Garage, the S3 store, with `cargo install garage --locked` when no
#                           `garage` binary is there (the first build takes a while);
#   postgres_bin            prints the newest installed PostgreSQL's bin folder.
# Expects log() and SUDO (empty when root) from the caller.

install_packages() {
  local missing=() p
  for p in "$@"; do
    # `dpkg -s` also succeeds for a removed package whose config files remain.
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  log "installing: ${missing[*]}"
  local policy_added=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${SUDO[@]}" chmod 755 /usr/sbin/policy-rc.d
    policy_added=1
  fi
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  [ "$policy_added" -eq 1 ] && "${SUDO[@]}" rm -f /usr/sbin/policy-rc.d
  return 0
}

install_garage() {
  command -v garage >/dev/null && return 0
  [ -x "$HOME/.cargo/bin/garage" ] && return 0
  log "installing garage (cargo install garage --locked; once per machine)"
  cargo install garage --locked
}

postgres_bin() {
  ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1
}
