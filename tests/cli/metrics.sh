#!/usr/bin/env bash
# --metrics-port end to end: a relay and a projector serve /metrics, and
# Prometheus's own text parser (python3-prometheus-client) reads it. The
# relay's gauges while its broker is down, its dead rows, then a real run;
# the projector's counters against what was sent (dead letters by reason),
# its lag down to 0 on every partition; 404 and 405; usage errors.
set -u

of=${ORDERFLOW:-build/orderflow}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/orderflow-metrics.XXXXXX") || exit 1
. "$(dirname "$0")/../lib.sh"
broker_pid= relay_pid= proj_pid=
cleanup() {
        for p in $relay_pid $proj_pid $broker_pid; do
                kill -9 "$p" 2>/dev/null
        done
        wait 2>/dev/null
        rm -rf "$tmp"
}
trap cleanup EXIT
app=$tmp/app.db
name=setup
fast=(-X session.timeout.ms=6000 -X heartbeat.interval.ms=500)
# Debian's python3, where python3-prometheus-client is (a python3 earlier
# on PATH may lack it).
py=/usr/bin/python3

fail() {
        echo "not ok - $name: $*" >&2
        for f in relay.err proj.err; do
                [ -s "$tmp/$f" ] && tail -5 "$tmp/$f" >&2
        done
        exit 1
}

[ -x "$of" ] || fail "no binary at $of (run make first)"
command -v kcat >/dev/null || fail "kcat is needed to publish events"
$py -c 'import prometheus_client' 2>/dev/null ||
        fail "$py has no prometheus_client (apt-get install python3-prometheus-client)"

# scrape.py URL SECONDS CHECK...: scrape URL until every CHECK holds or
# SECONDS pass. A CHECK is SAMPLE=VALUE, SAMPLE>VALUE or labels-of=FAMILY:
# L1,L2 (the values of the family's one label); a SAMPLE is written
# name{label="value"}. Each scrape is parsed by prometheus_client, must
# have Content-Type version 0.0.4 and HELP and TYPE for every family, and
# a histogram's _count must equal its +Inf bucket.
cat >"$tmp/scrape.py" <<'PY'
import sys, time, urllib.request
from prometheus_client.parser import text_string_to_metric_families

url, seconds, checks = sys.argv[1], float(sys.argv[2]), sys.argv[3:]

def scrape():
    with urllib.request.urlopen(url, timeout=5) as r:
        ctype = r.headers['Content-Type']
        text = r.read().decode('utf-8')
    assert ctype == 'text/plain; version=0.0.4; charset=utf-8', ctype
    samples, labels = {}, {}
    for fam in text_string_to_metric_families(text):
        assert fam.documentation, 'no HELP for ' + fam.name
        assert fam.type in ('counter', 'gauge', 'histogram'), fam.type
        assert '# TYPE %s' % fam.name in text or \
            '# TYPE %s_total' % fam.name in text, 'no TYPE for ' + fam.name
        for s in fam.samples:
            key = s.name + ''.join('{%s="%s"}' % kv
                                   for kv in sorted(s.labels.items()))
            samples[key] = s.value
            if len(s.labels) == 1 and 'le' not in s.labels:
                labels.setdefault(s.name, set()).update(s.labels.values())
        if fam.type == 'histogram':
            inf = samples[fam.name + '_bucket{le="+Inf"}']
            assert samples[fam.name + '_count'] == inf, fam.name
    return samples, labels

def holds(check, samples, labels):
    if check.startswith('labels-of='):
        fam, want = check[len('labels-of='):].split(':')
        return labels.get(fam, set()) == set(want.split(','))
    for op in ('=', '>'):
        key, sep, want = check.rpartition(op)
        if sep and '"' not in want:
            break
    got = samples.get(key)
    if got is None:
        return False
    return got == float(want) if op == '=' else got > float(want)

deadline = time.time() + seconds
while True:
    samples, labels = scrape()
    bad = [c for c in checks if not holds(c, samples, labels)]
    if not bad:
        sys.exit(0)
    if time.time() > deadline:
        for c in bad:
            key = c.rpartition('=' if '=' in c else '>')[0]
            print('%s: got %s' % (c, samples.get(key, labels.get(key))),
                  file=sys.stderr)
        sys.exit(1)
    time.sleep(0.2)
PY
scrape() { $py "$tmp/scrape.py" "$@"; }

# status URL: the HTTP status of a GET (or of METHOD, $2).
http_status() {
        $py - "$@" <<'PY'
import sys, urllib.request, urllib.error
req = urllib.request.Request(sys.argv[1],
                             method=sys.argv[2] if len(sys.argv) > 2 else 'GET')
try:
    print(urllib.request.urlopen(req, timeout=5).status)
except urllib.error.HTTPError as e:
    print(e.code)
PY
}

# metrics_url FILE: wait for the "metrics: serving URL" line in the log
# FILE (port 0: the port the kernel chose) and print the URL.
metrics_url() {
        local i url
        for i in $(seq 100); do
                url=$(sed -n 's/.*metrics: serving \(http:[^ ]*\).*/\1/p' \
                        "$1" | head -1)
                [ -n "$url" ] && break
                sleep 0.1
        done
        [ -n "$url" ] || return 1
        echo "$url"
}

start_broker --partitions 3 ||
        fail "the broker printed no address in 10 s"

# 40 orders, every second one paid: 60 outbox rows.
for i in $(seq 40); do
        "$of" place --db "$app" --order "o-$i" --total "$((i * 10))" \
                >/dev/null || fail "place o-$i"
        if [ $((i % 2)) -eq 0 ]; then
                "$of" pay --db "$app" --order "o-$i" --amount "$((i * 10))" \
                        >/dev/null || fail "pay o-$i"
        fi
done
rows=60

# ---- the relay ----
name="relay: rows pending while the broker is down"
# Nothing listens on port 1: deliveries wait out message.timeout.ms
# (30 s here), so the rows stay PENDING while we look.
"$of" relay --db "$app" -b 127.0.0.1:1 --lease-ms 1000 \
        --metrics-port 0 --metrics-addr 127.0.0.1 \
        -X message.timeout.ms=30000 2>"$tmp/relay.err" &
relay_pid=$!
url=$(metrics_url "$tmp/relay.err") || fail "no metrics URL logged"
scrape "$url" 20 "orderflow_outbox_pending=$rows" \
        'orderflow_outbox_oldest_pending_age_seconds>0' \
        'orderflow_outbox_dead=0' 'orderflow_relay_published_total=0' \
        'orderflow_relay_failed_total=0' || fail "scrape"
# (braces: no "Killed" notice from the shell)
{ kill -9 "$relay_pid" && wait "$relay_pid"; } 2>/dev/null
relay_pid=
ok

name="relay: failed attempts and dead rows"
# One attempt each, failing after 1 s; the killed relay's lease ends
# after 1 s too.
"$of" relay --db "$app" -b 127.0.0.1:1 --lease-ms 1000 --max-attempts 1 \
        --metrics-port 0 --metrics-addr 127.0.0.1 \
        -X message.timeout.ms=1000 2>"$tmp/relay.err" &
relay_pid=$!
url=$(metrics_url "$tmp/relay.err") || fail "no metrics URL logged"
# The first of each order fails and goes DEAD; its OrderPaid waits behind.
scrape "$url" 30 "orderflow_relay_failed_total=40" 'orderflow_outbox_dead=40' \
        'orderflow_outbox_pending=20' 'orderflow_relay_published_total=0' ||
        fail "scrape"
kill -TERM "$relay_pid"
wait "$relay_pid"
rc=$?
relay_pid=
[ "$rc" -eq 0 ] || fail "relay exit $rc after SIGTERM"
"$of" outbox retry --db "$app" --all-dead >/dev/null || fail "outbox retry"
ok

name="relay: published equals rows, pending goes to 0"
"$of" relay --db "$app" -b "$addr" --metrics-port 0 \
        --metrics-addr 127.0.0.1 2>"$tmp/relay.err" &
relay_pid=$!
url=$(metrics_url "$tmp/relay.err") || fail "no metrics URL logged"
scrape "$url" 30 "orderflow_relay_published_total=$rows" \
        'orderflow_relay_failed_total=0' 'orderflow_outbox_pending=0' \
        'orderflow_outbox_dead=0' \
        'orderflow_outbox_oldest_pending_age_seconds=0' || fail "scrape"
relay_url=$url
ok

name="metrics: orderflow_build_info says what --version says"
"$of" --version >"$tmp/version" || fail "--version exit $?"
ver=$(sed -n 's/^orderflow \([^ ]*\) .*/\1/p' "$tmp/version")
rev=$(sed -n 's/^orderflow [^ ]* (git \(.*\))$/\1/p' "$tmp/version")
rdk=$(sed -n 's/^librdkafka //p' "$tmp/version")
sql=$(sed -n 's/^SQLite //p' "$tmp/version")
[ -n "$ver" ] && [ -n "$rev" ] && [ -n "$rdk" ] && [ -n "$sql" ] ||
        fail "--version: $(cat "$tmp/version")"
scrape "$relay_url" 5 "orderflow_build_info{git_revision=\"$rev\"}{librdkafka=\"$rdk\"}{sqlite=\"$sql\"}{version=\"$ver\"}=1" ||
        fail "scrape"
ok

name="metrics: 404 on another path, 405 on POST"
[ "$(http_status "${relay_url%/metrics}/")" = 404 ] || fail "/ is not 404"
[ "$(http_status "${relay_url}x")" = 404 ] || fail "/metricsx is not 404"
[ "$(http_status "$relay_url" POST)" = 405 ] || fail "POST is not 405"
ok

name="metrics: a port in use is exit 1"
port=${relay_url##*:}
port=${port%/metrics}
"$of" project --db "$tmp/rm2.db" -b "$addr" --metrics-port "$port" \
        --metrics-addr 127.0.0.1 2>"$tmp/err"
[ $? -eq 1 ] && grep -q "cannot listen on 127.0.0.1 port $port" "$tmp/err" ||
        fail "expected exit 1 naming the port: $(cat "$tmp/err")"
ok

kill -TERM "$relay_pid"
wait "$relay_pid" || fail "relay exit $? after SIGTERM"
relay_pid=

# ---- the projector ----
name="projector: counters and dead letters by reason"
# Beside the relay's 60 events: one more order placed, its exact copy
# again (skipped), a second OrderPlaced for it under another id, an event
# of another type, two messages that are not JSON and one that is not an
# object.
ev() {
        printf '{"id":"%s","type":"%s","aggregateId":"x-1","occurredAt":"2026-11-27T10:15:30.123Z","payload":{"orderId":"x-1","total":5}}' "$1" "$2"
}
{
        echo "x-1|$(ev e-1 OrderPlaced)"
        echo "x-1|$(ev e-1 OrderPlaced)"
        echo "x-1|$(ev e-2 OrderPlaced)"
        echo "x-1|$(ev e-3 OrderShipped)"
        echo 'bad|{"id":'
        echo 'bad|not json at all'
        echo 'bad|[1,2,3]'
} >"$tmp/extra.txt"
kcat -P -b "$addr" -t orders -K '|' -l "$tmp/extra.txt" ||
        fail "kcat could not publish"
"$of" project --db "$tmp/rm.db" -b "$addr" -g metrics "${fast[@]}" \
        --metrics-port 0 --metrics-addr 127.0.0.1 2>"$tmp/proj.err" &
proj_pid=$!
url=$(metrics_url "$tmp/proj.err") || fail "no metrics URL logged"
d=orderflow_projector_dead_letters_total
scrape "$url" 60 "orderflow_projector_events_applied_total=$((rows + 1))" \
        'orderflow_projector_events_ignored_total=1' \
        'orderflow_projector_duplicates_skipped_total=1' \
        "$d{reason=\"invalid JSON\"}=2" \
        "$d{reason=\"not a JSON object\"}=1" \
        "$d{reason=\"duplicate OrderPlaced for order\"}=1" \
        "$d{reason=\"conflict\"}=0" "$d{reason=\"empty value\"}=0" \
        'orderflow_projector_batches_total>0' \
        'orderflow_projector_batch_duration_seconds_count>0' \
        'orderflow_projector_last_batch_timestamp_seconds>1700000000' ||
        fail "scrape"
dead=$(sqlite3 "$tmp/rm.db" \
        "SELECT count(*) FROM dead_letters WHERE reason LIKE 'invalid JSON%'")
[ "$dead" -eq 2 ] || fail "the read model has $dead invalid JSON dead letters"
ok

name="projector: lag reaches 0 on every partition"
scrape "$url" 60 'labels-of=orderflow_projector_partition_lag:0,1,2' \
        'orderflow_projector_partition_lag{partition="0"}=0' \
        'orderflow_projector_partition_lag{partition="1"}=0' \
        'orderflow_projector_partition_lag{partition="2"}=0' || fail "scrape"
ok

name="projector: new messages applied, lag back to 0"
for i in $(seq 41 50); do
        "$of" place --db "$app" --order "o-$i" --total 1 >/dev/null ||
                fail "place o-$i"
done
"$of" relay --db "$app" -b "$addr" --once -q || fail "relay --once exit $?"
scrape "$url" 60 "orderflow_projector_events_applied_total=$((rows + 11))" \
        'orderflow_projector_partition_lag{partition="0"}=0' \
        'orderflow_projector_partition_lag{partition="1"}=0' \
        'orderflow_projector_partition_lag{partition="2"}=0' || fail "scrape"
kill -TERM "$proj_pid"
wait "$proj_pid"
rc=$?
proj_pid=
[ "$rc" -eq 0 ] || fail "projector exit $rc after SIGTERM"
ok

name="metrics usage errors exit 2 with one line"
for cmd in project relay; do
        "$of" $cmd --db "$app" --metrics-port 65536 >/dev/null 2>"$tmp/err"
        [ $? -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] &&
                grep -q -- '--metrics-port' "$tmp/err" ||
                fail "$cmd --metrics-port 65536: $(cat "$tmp/err")"
        "$of" $cmd --db "$app" --metrics-port x >/dev/null 2>"$tmp/err"
        [ $? -eq 2 ] && grep -q -- '--metrics-port' "$tmp/err" ||
                fail "$cmd --metrics-port x: $(cat "$tmp/err")"
        "$of" $cmd --db "$app" --metrics-port 0 --metrics-addr localhost \
                >/dev/null 2>"$tmp/err"
        [ $? -eq 2 ] && grep -q -- '--metrics-addr localhost' "$tmp/err" ||
                fail "$cmd --metrics-addr localhost: $(cat "$tmp/err")"
        "$of" $cmd --db "$app" --metrics-addr 127.0.0.1 >/dev/null \
                2>"$tmp/err"
        [ $? -eq 2 ] && grep -q -- 'needs --metrics-port' "$tmp/err" ||
                fail "$cmd --metrics-addr alone: $(cat "$tmp/err")"
        "$of" $cmd --help | grep -q -- '--metrics-port N' ||
                fail "$cmd --help does not describe --metrics-port"
done
ok
