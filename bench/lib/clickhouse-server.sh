# Sourced by the bench scripts: starts Debian's clickhouse-server as a plain
# process on loopback with a fresh data directory, stopped and removed on
# exit. Sets ch (its directory), port (HTTP; the native protocol is on
# port + 1), chpid and client (clickhouse-client), and defines q QUERY,
# which runs a query with the client.
server=$(command -v clickhouse-server || echo /usr/sbin/clickhouse-server)
[ -x "$server" ] || { echo "clickhouse-server is not installed (apt-get install clickhouse-server)" >&2; exit 1; }
ch=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$ch/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$ch/server.log</log><errorlog>$ch/error.log</errorlog><console>0</console></logger>
  <http_port>$port</http_port><tcp_port>$((port + 1))</tcp_port><listen_host>127.0.0.1</listen_host>
  <path>$ch/data/</path><tmp_path>$ch/tmp/</tmp_path><user_files_path>$ch/user_files/</user_files_path>
  <users_config>users.xml</users_config><default_profile>default</default_profile><default_database>default</default_database>
  <mark_cache_size>536870912</mark_cache_size>
</yandex>
XML
cat >"$ch/users.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>8000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
XML
(cd "$ch" && exec "$server" --config-file="$ch/config.xml" >"$ch/stdout" 2>&1) &
chpid=$!
trap 'kill $chpid 2>/dev/null; wait $chpid 2>/dev/null; rm -rf "$ch"' EXIT
until curl -sf "http://127.0.0.1:$port/?query=SELECT%201" >/dev/null; do sleep 0.2; done
client=$(command -v clickhouse-client || echo /usr/bin/clickhouse-client)
q() { "$client" --host 127.0.0.1 --port $((port + 1)) --query "$1"; }
