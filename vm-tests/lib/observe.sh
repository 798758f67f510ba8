# shellcheck shell=bash
# vm-tests/lib/observe.sh - helpers for the observability tests (Prometheus,
# dashboard), on top of lib/testbed.sh (source that first, then this).
#
# shhimd runs in the client namespace, so its HTTP listener is on that
# namespace's loopback; Prometheus, curl and Chromium run there too. Nothing
# here listens on, or talks to, the host's own network.

OBS_HTTP_PORT=9464      # shhimd --http-listen; free in a namespace made for this run
OBS_PROM_PORT=9090

obs_require_commands() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || tb_die "missing command $c (run scripts/setup-deps.sh)"
  done
}

# obs_curl ARGS...: curl in the client namespace, bounded in time.
obs_curl() { tb_in_client curl -sS --max-time 5 "$@"; }

obs_agent_url() { printf 'http://127.0.0.1:%s' "$OBS_HTTP_PORT"; }
obs_prom_url() { printf 'http://127.0.0.1:%s' "$OBS_PROM_PORT"; }

# obs_start_prometheus: Debian's prometheus as a child of this test (never
# the packaged service), own config and data under $TB_DIR, scraping
# shhimd every second, web UI/API on the client namespace's loopback.
obs_start_prometheus() {
  local dir="$TB_DIR/prometheus"
  mkdir -p "$dir/data"
  cat >"$dir/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: shhimd
    static_configs:
      - targets: ["127.0.0.1:$OBS_HTTP_PORT"]
YAML
  nsenter --net="/run/netns/$TB_NS_CLIENT" -- prometheus \
    --config.file="$dir/prometheus.yml" \
    --storage.tsdb.path="$dir/data" \
    --web.listen-address="127.0.0.1:$OBS_PROM_PORT" \
    --log.level=warn >"$TB_DIR/prometheus.log" 2>&1 </dev/null &
  OBS_PROM_PID=$!
  tb_track_pid "$OBS_PROM_PID"
  if ! tb_wait_for "prometheus ready on 127.0.0.1:$OBS_PROM_PORT" 30 obs__prom_ready; then
    tail -n 30 "$TB_DIR/prometheus.log" >&2
    tb_die "prometheus did not start"
  fi
  tb_log "prometheus pid $OBS_PROM_PID on 127.0.0.1:$OBS_PROM_PORT (client namespace), scraping :$OBS_HTTP_PORT every 1 s"
}

obs__prom_ready() {
  tb__is_our_child "$OBS_PROM_PID" && obs_curl -f "$(obs_prom_url)/-/ready" >/dev/null
}

# obs_prom_query EXPR: the API's JSON answer to an instant query.
obs_prom_query() {
  obs_curl -f -G "$(obs_prom_url)/api/v1/query" --data-urlencode "query=$1"
}

# obs_prom_value EXPR: the value of a one-sample instant query, "none" when
# the query returns no sample (or more than one).
obs_prom_value() {
  obs_prom_query "$1" | jq -r 'if .status == "success" and (.data.result | length) == 1
    then .data.result[0].value[1] else "none" end'
}
