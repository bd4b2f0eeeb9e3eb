# Shared by test-deb.sh and test-msi.sh (sourced): a check counter and a free loopback port.
# check DESCRIPTION COMMAND... runs COMMAND, prints ok/FAIL (with its output's tail on
# failure) and counts; report prints "N passed, N failed" and fails when anything did.
passed=0
failed=0
check_log=$(mktemp)
check() {
  local what=$1
  shift
  if "$@" >"$check_log" 2>&1; then
    passed=$((passed + 1))
    echo "ok   $what"
  else
    failed=$((failed + 1))
    echo "FAIL $what"
    sed 's/^/     /' "$check_log" | tail -20
  fi
}
report() {
  rm -f "$check_log"
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
