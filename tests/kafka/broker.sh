#!/usr/bin/env bash
# A real Apache Kafka cluster (KRaft) on loopback for tests and benchmarks,
# with the interface of `orderflow broker`: the bootstrap list is the first
# line on stdout once the topic is ready; fault commands are lines on stdin,
# each answered by one line on stdout ("ok COMMAND" or "error: COMMAND:
# REASON"); it serves until SIGTERM, SIGINT or SIGHUP, then stops every JVM,
# removes its folder and exits 0.
usage() {
        cat <<'EOF'
usage: tests/kafka/broker.sh [-t TOPIC] [-p N] [--nodes N] [--sasl FILE]
                             [--direct] [-v|-q]

Start N (1) combined broker+controller nodes of Apache Kafka (KRaft) on
127.0.0.1, on free ports, in a new temporary folder, and create TOPIC
(orders) with N partitions (4) and replication factor min(nodes, 3). The
bootstrap list "127.0.0.1:PORT,..." is printed as the first line on stdout
once the topic has a leader for every partition.

  -t, --topic TOPIC   the topic to create ("" creates none)
  -p, --partitions N  its partitions
  --nodes N           nodes in the cluster
  --sasl FILE         clients authenticate with SASL/PLAIN (not SCRAM: see
                      below): FILE gets the librdkafka properties
                      (security.protocol, sasl.mechanism, sasl.username,
                      sasl.password) to pass with -F; kadmin uses them too
  --direct            clients connect to the nodes themselves, not through
                      a proxy (no cut/heal; for benchmarks)
  -v, -q              the nodes' log level: INFO / ERROR (WARN)

Faults, one command a line on stdin; ID is a node (1..N):
  kill ID    SIGKILL the node (its data stays)
  start ID   start a killed node again on its data; answers once it serves
  stop ID    SIGSTOP the node (a hung broker);  cont ID  SIGCONT it
  cut ID     the clients' network to the node is cut: open connections are
             closed, new ones get no answer;  heal ID  restores it
  rtt ID MS  the node's answers reach the clients MS ms later (0: at once)
  pid ID     answers "ok pid ID PID"

Environment: KAFKA_DIRECT=1 (as --direct), KAFKA_LIB (build/kafka/lib, fetched by tests/kafka/fetch.sh
when missing), KAFKA_HEAP (-Xms128m -Xmx512m), KADMIN and TCPPROXY (the
test tools, built by `make test-kafka`).
EOF
}
set -u
# A shell without job control starts background commands with SIGINT
# ignored, and a shell cannot trap what it was started ignoring: start
# again with the default, so that SIGINT stops this broker as it does
# `orderflow broker`.
if [ -z "${OF_KAFKA_BROKER_SIGNALS:-}" ]; then
        OF_KAFKA_BROKER_SIGNALS=1 exec env --default-signal=INT,QUIT \
                bash "$0" "$@"
fi

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
B=${B:-build}
case $B in /*) ;; *) B=$root/$B ;; esac
kadmin=${KADMIN:-$B/tests/kafka/kadmin}
tcpproxy=${TCPPROXY:-$B/tests/kafka/tcpproxy}
heap=${KAFKA_HEAP:--Xms128m -Xmx512m}

topic=orders partitions=4 nodes=1 sasl= direct=${KAFKA_DIRECT:-0} level=WARN
err() { echo "tests/kafka/broker.sh: $*" >&2; }
while [ $# -gt 0 ]; do
        case $1 in
        -t | --topic) topic=${2?}; shift ;;
        -p | --partitions) partitions=${2?}; shift ;;
        --nodes) nodes=${2?}; shift ;;
        --sasl) sasl=${2?}; shift ;;
        --direct) direct=1 ;;
        -v) level=INFO ;;
        -q) level=ERROR ;;
        -h | --help) usage; exit 0 ;;
        *) err "unknown option $1 (see --help)"; exit 2 ;;
        esac
        shift
done
case $nodes in [1-9]) ;; *) err "--nodes: 1 to 9"; exit 2 ;; esac
case $partitions in
'' | *[!0-9]* | 0) err "--partitions: a number, 1 or more"; exit 2 ;;
esac
for tool in "$kadmin" "$tcpproxy"; do
        [ -x "$tool" ] || { err "$tool missing (make test-kafka builds it)"
                            exit 1; }
done
lib=${KAFKA_LIB:-$root/build/kafka/lib}
[ -d "$lib" ] || lib=$("$here/fetch.sh") || exit 1

dir=$(mktemp -d "${TMPDIR:-/tmp}/orderflow-kafka.XXXXXX") || exit 1
declare -a jvm proxy pport
stopping=0

# Stop every JVM and proxy, remove the folder, exit 0.
finish() {
        local i
        stopping=1
        for i in $(seq "$nodes"); do
                [ -n "${jvm[$i]:-}" ] && kill -KILL "${jvm[$i]}" 2>/dev/null
                [ -n "${proxy[$i]:-}" ] && kill -TERM "${proxy[$i]}" 2>/dev/null
        done
        kill $(jobs -p) 2>/dev/null # kadmin while starting, a sleep
        wait 2>/dev/null
        rm -rf "$dir"
        exit "${1:-0}"
}
trap 'finish 0' TERM INT HUP

# free_port: a loopback port nothing listens on and none taken here yet,
# below the ephemeral range (32768-60999), where no client's connection
# can take it before the node binds it.
taken=" "
free_port() {
        local p
        while :; do
                p=$((10000 + RANDOM % 22000))
                case $taken in *" $p "*) continue ;; esac
                (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
                taken="$taken$p "
                echo "$p"
                return
        done
}

rf=$((nodes < 3 ? nodes : 3))
isr=$((rf < 2 ? 1 : 2))
voters=
declare -a bport iport cport
for i in $(seq "$nodes"); do
        bport[$i]=$(free_port)
        iport[$i]=$(free_port)
        cport[$i]=$(free_port)
        voters="$voters${voters:+,}$i@127.0.0.1:${cport[$i]}"
done

# The clients' listener: SASL/PLAIN when --sasl, else plaintext. Not
# SCRAM: librdkafka before 2.6.1 (Debian's is 2.0.2) appends its nonce
# twice in the SCRAM client-final-message, which Kafka 4's strict RFC 5802
# check refuses ("invalid credentials" whatever the password;
# confluentinc/librdkafka#4895). PLAIN still takes the user and secret
# from the -F file, and a wrong one fails authentication the same way.
client_proto=PLAINTEXT
if [ -n "$sasl" ]; then
        client_proto=SASL_PLAINTEXT
        user=orderflow
        secret=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
        umask 077
        printf '%s\n' "security.protocol=SASL_PLAINTEXT" \
                "sasl.mechanism=PLAIN" "sasl.username=$user" \
                "sasl.password=$secret" >"$sasl"
fi

cat >"$dir/log4j2.properties" <<EOF
rootLogger.level = $level
rootLogger.appenderRef.file.ref = file
appender.file.type = File
appender.file.name = file
appender.file.fileName = \${sys:kafka.logs.dir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
EOF

for i in $(seq "$nodes"); do
        mkdir -p "$dir/n$i"
        if [ "$direct" = 1 ]; then
                pport[$i]=${bport[$i]}
        else
                "$tcpproxy" "${bport[$i]}" "$dir/n$i/rtt" \
                        >"$dir/n$i/proxy.port" &
                proxy[$i]=$!
        fi
done
for i in $(seq "$nodes"); do
        if [ "$direct" = 0 ]; then
                for _ in $(seq 100); do
                        [ -s "$dir/n$i/proxy.port" ] && break
                        sleep 0.05
                done
                pport[$i]=$(head -1 "$dir/n$i/proxy.port")
        fi
        cat >"$dir/n$i/server.properties" <<EOF
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$voters
controller.listener.names=CONTROLLER
inter.broker.listener.name=INTERNAL
listeners=INTERNAL://127.0.0.1:${iport[$i]},CLIENT://127.0.0.1:${bport[$i]},CONTROLLER://127.0.0.1:${cport[$i]}
advertised.listeners=INTERNAL://127.0.0.1:${iport[$i]},CLIENT://127.0.0.1:${pport[$i]}
listener.security.protocol.map=INTERNAL:PLAINTEXT,CLIENT:$client_proto,CONTROLLER:PLAINTEXT
log.dirs=$dir/n$i/data
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
transaction.state.log.num.partitions=6
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
EOF
        if [ -n "$sasl" ]; then
                # The user and secret in the listener's own JAAS entry
                # (there is no JAAS file; without an entry the node exits
                # at startup).
                printf '%s\n' "sasl.enabled.mechanisms=PLAIN" \
                        "listener.name.client.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$user=\"$secret\";" \
                        >>"$dir/n$i/server.properties"
        fi
done

# java_cmd LOGDIR ARGS...: exec the JVM (in a background subshell only:
# $! is then the JVM itself, which a kill reaches); it is killed when this
# script dies, even of SIGKILL (a test's cleanup), so no JVM outlives it.
java_cmd() {
        exec setpriv --pdeathsig KILL java $heap -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
                -Djava.awt.headless=true \
                -Dlog4j2.configurationFile="$dir/log4j2.properties" \
                -Dkafka.logs.dir="$1" -cp "$lib/*" "${@:2}"
}

# Format every node's storage with one cluster id, in parallel. (Given as
# --cluster-id=ID: one in 64 begins with "-", which a separate argument
# would turn into an option.)
cluster=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
for i in $(seq "$nodes"); do
        (java_cmd "$dir/n$i" kafka.tools.StorageTool format \
                --cluster-id="$cluster" -c "$dir/n$i/server.properties" \
                >"$dir/n$i/format.log" 2>&1) &
done
for i in $(seq "$nodes"); do
        wait -n || { err "formatting storage failed:" \
                         "$(tail -1 "$dir"/n*/format.log)"; finish 1; }
done

# start_node ID: run node ID in the background; jvm[ID] its pid.
start_node() {
        (java_cmd "$dir/n$1" kafka.Kafka "$dir/n$1/server.properties" \
                >>"$dir/n$1/stdout.log" 2>&1) &
        jvm[$1]=$!
}
for i in $(seq "$nodes"); do
        start_node "$i"
done

bootstrap=
for i in $(seq "$nodes"); do
        bootstrap="$bootstrap${bootstrap:+,}127.0.0.1:${pport[$i]}"
done
admin=("$kadmin" -b "$bootstrap" -T 120)
[ -n "$sasl" ] && admin+=(-F "$sasl")

# Serving once the topic has a leader for each partition (with no topic:
# once the metadata answers, through a topic nobody uses).
if [ -n "$topic" ]; then
        "${admin[@]}" create "$topic" "$partitions" "$rf" >/dev/null &
else
        "${admin[@]}" watermarks __orderflow_probe >/dev/null 2>&1 &
fi
ready=$!
# A node that dies while starting (a port taken after all) ends the wait.
while kill -0 "$ready" 2>/dev/null; do
        for i in $(seq "$nodes"); do
                kill -0 "${jvm[$i]}" 2>/dev/null && continue
                err "node $i exited while starting:" \
                    "$(grep -h -m1 -E 'ERROR|Exception' "$dir/n$i/server.log" \
                       "$dir/n$i/stdout.log" 2>/dev/null | head -1)"
                finish 1
        done
        sleep 0.2
done
if ! wait "$ready" && [ -n "$topic" ]; then
        err "creating $topic failed"
        finish 1
fi
echo "$bootstrap"

# node_up ID: node ID answers on its internal listener (a started JVM
# takes a few seconds).
node_up() {
        local t
        for t in $(seq 600); do
                (exec 3<>"/dev/tcp/127.0.0.1/${iport[$1]}") 2>/dev/null &&
                        return 0
                kill -0 "${jvm[$1]}" 2>/dev/null || return 1
                sleep 0.1
        done
        return 1
}

# fault LINE: one fault command; prints its reply.
fault() {
        local verb=$1 id=${2:-} pid
        case $id in
        [1-9]) [ "$id" -le "$nodes" ] || { echo "error: $*: no node $id"
                                           return; } ;;
        *) echo "error: $*: a node id, 1 to $nodes"; return ;;
        esac
        pid=${jvm[$id]}
        case $verb in
        kill)
                kill -KILL "$pid" 2>/dev/null
                wait "$pid" 2>/dev/null
                echo "ok $*" ;;
        start)
                if kill -0 "$pid" 2>/dev/null; then
                        echo "error: $*: node $id is running"
                        return
                fi
                start_node "$id"
                if node_up "$id"; then echo "ok $*"
                else echo "error: $*: node $id did not start" \
                          "(see $dir/n$id/server.log)"; fi ;;
        stop) kill -STOP "$pid" 2>/dev/null && echo "ok $*" ||
                echo "error: $*: node $id is not running" ;;
        cont) kill -CONT "$pid" 2>/dev/null && echo "ok $*" ||
                echo "error: $*: node $id is not running" ;;
        cut | heal)
                if [ "$direct" = 1 ]; then
                        echo "error: $*: no proxy (--direct)"
                        return
                fi
                kill "-$([ "$verb" = cut ] && echo USR1 || echo USR2)" \
                        "${proxy[$id]}" && echo "ok $*" ||
                        echo "error: $*: the proxy is gone" ;;
        rtt)
                case ${3:-} in
                '' | *[!0-9]*) echo "error: $*: rtt ID MS"; return ;;
                esac
                if [ "$direct" = 1 ]; then
                        echo "error: $*: no proxy (--direct)"
                        return
                fi
                echo "$3" >"$dir/n$id/rtt"
                kill -HUP "${proxy[$id]}" && echo "ok $*" ||
                        echo "error: $*: the proxy is gone" ;;
        pid) echo "ok $* $pid" ;;
        *) echo "error: $*: unknown command (see --help)" ;;
        esac
}

while read -r line; do
        [ -n "$line" ] || continue
        # shellcheck disable=SC2086
        fault $line
done
# End of input only stops reading.
while :; do
        sleep 1 &
        wait $!
done
