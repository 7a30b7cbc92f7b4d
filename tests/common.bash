# common.bash - sourced by the tests/*.sh suites: the check helper that
# prints the PASS:/FAIL: lines tests/run.sh counts.  (Not *.sh, so run.sh
# does not run it as a suite.)
#   ok DESCRIPTION SHELL-CONDITION
ok() { if eval "$2"; then echo "PASS: $1"; else echo "FAIL: $1  [$2]"; fi; }
