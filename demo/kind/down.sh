#!/usr/bin/env bash
# Deletes the kind cluster demo/kind/up.sh created, and the kubeconfig it wrote.
set -euo pipefail
cd "$(dirname "$0")"
kind delete cluster --name kpulse-demo
rm -f kpulse-readonly.kubeconfig
