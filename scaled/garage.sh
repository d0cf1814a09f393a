#!/bin/sh
# Garage for Berth's scaled deployment (docker-compose.yml beside this file): three nodes on the
# host's loopback, replication factor 3, one bucket and one key for the registryd replicas.
#
#   berth-garage node N     runs node N (1, 2 or 3): S3 on 127.0.0.1:39N0-10, RPC on the next port
#                           (3900/3901, 3910/3911, 3920/3921), metadata and data in the volumes
#                           mounted at /var/lib/garage/{meta,data}.
#   berth-garage setup      once the nodes run: connects them, gives each 1 GB of the layout in
#                           zone dc1, imports the key from S3_ACCESS_KEY and S3_SECRET_KEY, creates
#                           the bucket S3_BUCKET and allows the key on it. Run again, it changes
#                           nothing that is already done. Reads node N's node id from its metadata
#                           volume, mounted read-only at /var/lib/garage/metaN.
#
# GARAGE_RPC_SECRET (64 hex digits, the same on every node) comes from the environment.
set -eu

BUCKET="${S3_BUCKET:-berth}"
KEY_NAME=berth

# config N METADATA_DIR: node N's garage.toml on stdout.
config() {
  s3=$((3900 + 10 * ($1 - 1)))
  cat <<TOML
metadata_dir = "$2"
data_dir = "/var/lib/garage/data"
replication_factor = 3
rpc_bind_addr = "127.0.0.1:$((s3 + 1))"
rpc_public_addr = "127.0.0.1:$((s3 + 1))"

[s3_api]
api_bind_addr = "127.0.0.1:$s3"
s3_region = "garage"
root_domain = ".s3.garage.localhost"
TOML
}

# retry COMMAND…: runs it until it succeeds, every second, for two minutes at most.
retry() {
  tries=0
  until "$@"; do
    tries=$((tries + 1))
    [ "$tries" -lt 120 ] || { echo "berth-garage: gave up on: $*" >&2; return 1; }
    sleep 1
  done
}

case "${1:-}" in
  node)
    case "${2:-}" in 1 | 2 | 3) ;; *) echo "usage: berth-garage node 1|2|3" >&2; exit 2 ;; esac
    config "$2" /var/lib/garage/meta > /tmp/garage.toml
    exec garage -c /tmp/garage.toml server
    ;;
  setup)
    : "${S3_ACCESS_KEY:?set S3_ACCESS_KEY}" "${S3_SECRET_KEY:?set S3_SECRET_KEY}"
    for n in 1 2 3; do config "$n" "/var/lib/garage/meta$n" > "/tmp/node$n.toml"; done
    g() { garage -c /tmp/node1.toml "$@"; }
    if g bucket info "$BUCKET" >/dev/null 2>&1 && g key info "$KEY_NAME" >/dev/null 2>&1; then
      echo "berth-garage: the cluster is set up already"
      exit 0
    fi
    ids=""
    for n in 1 2 3; do
      retry sh -c "garage -c /tmp/node$n.toml node id -q > /tmp/id$n 2>/dev/null"
      ids="$ids $(cat "/tmp/id$n")"
    done
    for id in $ids; do retry g node connect "$id"; done
    if retry g layout show | grep -q '^Current cluster layout version: 0$'; then
      for id in $ids; do retry g layout assign -z dc1 -c 1G "${id%%@*}"; done
      retry g layout apply --version 1
    fi
    g key info "$KEY_NAME" >/dev/null 2>&1 \
      || retry g key import --yes -n "$KEY_NAME" "$S3_ACCESS_KEY" "$S3_SECRET_KEY"
    g bucket info "$BUCKET" >/dev/null 2>&1 || retry g bucket create "$BUCKET"
    retry g bucket allow --read --write --owner "$BUCKET" --key "$KEY_NAME"
    echo "berth-garage: bucket $BUCKET ready for key $KEY_NAME"
    ;;
  *)
    echo "usage: berth-garage node 1|2|3 | setup" >&2
    exit 2
    ;;
esac
