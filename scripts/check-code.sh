#!/usr/bin/env bash
# Code rules a compiler does not check (STYLE.md):
#  - every symbol a module exports carries the nb_ prefix;
#  - no SQLite outside src/store/;
#  - no banned string functions (strcpy, sprintf, strtok, atoi, gets).
# Usage: scripts/check-code.sh BUILD_DIR
set -euo pipefail
build=${1:-build}
fail=0

bad=$(for o in $(find "$build/obj" -name '*.o' ! -name 'main.o'); do
        nm --defined-only --extern-only "$o" | awk -v f="$o" '$2 ~ /^[TDBR]$/ && $3 !~ /^nb_/ && $3 !~ /^__(odr_)?asan/ {print f": "$3}'
      done)
if [ -n "$bad" ]; then
    echo "exported symbols without the nb_ prefix:"; echo "$bad"; fail=1
fi

sq=$(grep -rln 'sqlite3' src --include='*.[ch]' | grep -v '^src/store/' || true)
if [ -n "$sq" ]; then
    echo "SQLite used outside src/store/:"; echo "$sq"; fail=1
fi

banned=$(grep -rnE '\b(strcpy|strcat|sprintf|vsprintf|strtok|atoi|atol|gets)\s*\(' src include --include='*.[ch]' || true)
if [ -n "$banned" ]; then
    echo "banned functions:"; echo "$banned"; fail=1
fi

[ $fail -eq 0 ] && echo "check-code: ok ($(find "$build/obj" -name '*.o' | wc -l) objects)"
exit $fail
