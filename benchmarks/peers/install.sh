#!/usr/bin/env bash
# Peer toolkits for the side-by-side benchmarks, each in a venv of its own under
# benchmarks/.peers/ (git-ignored), so their old pins never touch our .venv.
#
#   bolts/    torch + pytorch-lightning 1.9.5 + lightning-bolts 0.7.0
#   lightly/  torch + the current lightly
#
# Idempotent: an env whose `.installed` stamp exists is skipped. An env that fails
# to install gets a `.failed` marker (with the pip log beside it) and the script
# carries on and exits 0, so the benchmarks can report it as "not installed".
set -u

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PEERS="${PEERS_DIR:-$ROOT/benchmarks/.peers}"
PYTHON="${PYTHON:-python3}"
# Same torch as our own venv: pip takes it from the local wheel store when present.
TORCH_PINS=("torch==2.14.1" "torchvision==0.29.1")

mkdir -p "$PEERS"

install_env() {
    local name="$1"
    shift
    local env="$PEERS/$name"
    if [[ -f "$env/.installed" ]]; then
        echo "peers: $name already installed ($env)"
        return 0
    fi
    rm -rf "$env"
    echo "peers: installing $name into $env (a few minutes) ..."
    if "$PYTHON" -m venv "$env" >"$PEERS/$name.log" 2>&1 \
        && "$env/bin/python" -m pip install --quiet "$@" >>"$PEERS/$name.log" 2>&1 \
        && "$env/bin/python" -c "${CHECK[$name]}" >>"$PEERS/$name.log" 2>&1; then
        "$env/bin/python" -m pip freeze >"$env/.installed"
        rm -f "$PEERS/$name.failed"
        echo "peers: $name installed"
    else
        mkdir -p "$env"
        tail -n 1 "$PEERS/$name.log" >"$PEERS/$name.failed"
        echo "peers: $name NOT installed ($(tail -n 1 "$PEERS/$name.log")); see $PEERS/$name.log"
    fi
}

declare -A CHECK=(
    [bolts]="import pl_bolts, pytorch_lightning; from pl_bolts.models.self_supervised import SimCLR"
    [lightly]="import lightly; from lightly.loss import NTXentLoss"
)

# bolts 0.7 predates Lightning 2 and still imports pkg_resources (gone in setuptools 81).
install_env bolts "${TORCH_PINS[@]}" "pytorch-lightning==1.9.5" "lightning-bolts==0.7.0" \
    "setuptools<81"
install_env lightly "${TORCH_PINS[@]}" lightly

exit 0
