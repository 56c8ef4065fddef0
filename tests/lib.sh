# lib.sh — assertions for the bash integration tests (sourced).
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
_fails=0 _checks=0
_report() { _checks=$((_checks + 1)); if [ "$1" = ok ]; then echo "ok   $2"; else _fails=$((_fails + 1)); echo "FAIL $2"; [ -n "${3:-}" ] && printf '%s\n' "$3" | head -c 2000 | sed 's/^/     /'; fi; }
expect_eq() { if [ "$2" = "$3" ]; then _report ok "$1"; else _report fail "$1" "expected: $2
got:      $3"; fi; }
expect_match() { if printf '%s' "$3" | grep -Eq -- "$2"; then _report ok "$1"; else _report fail "$1" "no match for /$2/ in: $3"; fi; }
expect_file() { if [ -s "$2" ]; then _report ok "$1"; else _report fail "$1" "missing or empty: $2"; fi; }
finish() { echo "$((_checks - _fails)) passed, $_fails failed"; [ "$_fails" -eq 0 ]; }
