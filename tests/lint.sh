#!/usr/bin/env bash
# make lint: the layout rules the code keeps (STYLE): no file of src/ over
# 600 lines, no function of src/ or tests/ over 80 lines (from the line of
# its opening brace at column 0 to its closing one), and every C file as
# .clang-format lays it out (when clang-format is installed; CI installs
# it). Names each offender; exits 1 if there is any.
set -u
cd "$(dirname "$0")/.." || exit 1
bad=0

for f in src/*.c src/*.h include/orderflow/*.h; do
        n=$(wc -l <"$f")
        if [ "$n" -gt 600 ]; then
                echo "lint: $f: $n lines (at most 600)"
                bad=1
        fi
done

# A function: "{" alone at column 0 (the style puts nothing else there),
# named by the last line that began at column 0 before it; it ends at the
# next "}" at column 0.
long=$(awk '
        FNR == 1 { name = ""; start = 0 }
        /^[A-Za-z_]/ && !start { name = $0 }
        /^\{[[:space:]]*$/ { start = FNR; next }
        /^\}/ && start {
                n = FNR - start - 1
                if (n > 80) {
                        sub(/\(.*/, "", name); sub(/.*[ *]/, "", name)
                        printf "lint: %s:%d: %s() has %d lines (at most 80)\n",
                                FILENAME, start, name, n
                }
                start = 0
        }' src/*.c tests/*.c tests/*/*.c)
if [ -n "$long" ]; then
        echo "$long"
        bad=1
fi

if command -v clang-format >/dev/null; then
        for f in src/*.c src/*.h include/orderflow/*.h tests/*.c tests/*.h \
                tests/*/*.c tests/*/*.h; do
                [ -e "$f" ] || continue
                if ! clang-format --dry-run --Werror "$f" 2>/dev/null; then
                        echo "lint: $f: not as .clang-format lays it out" \
                                "(clang-format -i $f)"
                        bad=1
                fi
        done
else
        echo "lint: clang-format is not installed: layout not checked"
fi
[ "$bad" -eq 0 ] && echo "lint: ok"
exit "$bad"
