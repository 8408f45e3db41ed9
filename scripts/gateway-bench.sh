#!/usr/bin/env bash
# kpulse's access-log ingest against goaccess on the same ingress-nginx file, side by side, each
# under /usr/bin/time -v: the bench's in-process ingest (parse + aggregate, one core), the real
# binary path (`kpulse snapshot --gateway file+all:FILE`, no cluster: file → bounded channel →
# parser → report), and goaccess.
#   scripts/gateway-bench.sh [LINES, default 4800000 ≈ 1 GB] [FILE, default /tmp/kpulse-access.log]
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-4800000}
file=${2:-/tmp/kpulse-access.log}
for tool in goaccess /usr/bin/time; do
  command -v "$tool" >/dev/null 2>&1 || { echo "installing goaccess and time"; apt-get install -y -qq goaccess time; break; }
done
bench=$(cargo bench --bench accesslog --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys; print([m["executable"] for m in map(json.loads, sys.stdin) if m.get("executable") and "accesslog" in m["executable"]][-1])')
if [ ! -s "$file" ] || [ "$(wc -l <"$file")" -ne "$lines" ]; then
  echo "generating $lines ingress-nginx lines into $file"
  KPULSE_GENERATE_FILE="$file" KPULSE_GENERATE_LINES="$lines" "$bench"
fi
ls -l "$file"
echo "== kpulse"
/usr/bin/time -v env KPULSE_INGEST_FILE="$file" "$bench" 2>/tmp/kpulse-time.txt
grep -E "Elapsed|Maximum resident|User time|System time" /tmp/kpulse-time.txt
echo "== kpulse snapshot --gateway file+all: (release binary, no cluster)"
cargo build --release --bin kpulse -q
/usr/bin/time -v env KUBECONFIG=/nonexistent HOME="$(mktemp -d)" target/release/kpulse snapshot \
  --gateway "file+all:$file" --format json >/tmp/kpulse-snapshot.json 2>/tmp/kpulse-snapshot-time.txt || true
grep -E "Elapsed|Maximum resident|User time|System time" /tmp/kpulse-snapshot-time.txt
python3 -c "import json; d=json.load(open('/tmp/kpulse-snapshot.json')); g=d['gateway_logs'][0]; print('kpulse snapshot: read', g['read'], 'skipped', g['not_in_format'], 'window', d['traffic_window']['kind'])"
echo "== goaccess $(goaccess --version | head -1)"
/usr/bin/time -v goaccess "$file" --no-global-config --no-progress \
  --log-format='%h %^ %^ [%d:%t %^] "%r" %s %b "%R" "%u" %^ %T [%v] [%^] %^' \
  --date-format=%d/%b/%Y --time-format=%T -o /tmp/goaccess-report.json 2>/tmp/goaccess-time.txt
grep -E "Elapsed|Maximum resident|User time|System time" /tmp/goaccess-time.txt
python3 -c "import json; g=json.load(open('/tmp/goaccess-report.json'))['general']; print('goaccess: valid', g['valid_requests'], 'failed', g['failed_requests'])"
